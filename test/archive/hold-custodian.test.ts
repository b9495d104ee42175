import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { openJournal } from '../../src/archive/journal.js';
import { archiveConfig, cli, DAY, decisions, envelope, message, silent, tempDir } from './helpers.js';

/**
 * `postern archive hold add` through the built CLI: a hold's custodian is matched as
 * search's --participant is ("*" wildcards), and a custodian that is no address at all
 * (a display name, <>) is refused rather than recorded as a hold that covers nothing.
 */

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Two items past a 30-day retention: one to a patient at example.net, one to another domain. */
async function expiredArchive() {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const { config, file } = archiveConfig(dataDir, { retention: { defaultDays: 30 } });
  const journal = await openJournal(config, dataDir, silent);
  const ids: string[] = [];
  for (const to of ['patient@example.net', 'someone@other.test']) {
    const e = envelope({ receivedAt: Date.now() - 100 * DAY, from: 'dr.smith@hospital.test', to: [to] });
    ids.push(e.id);
    await journal!.record({ envelope: e, decisions: decisions(e), body: message('Lab results', 'text') });
  }
  await journal!.close();
  const [patient, other] = ids as [string, string];
  return { file, patient, other };
}

const addHold = (file: string, ...args: string[]) => cli(['archive', 'hold', 'add', '-c', file, '--by', 'counsel', '--reason', 'case 17', ...args]);

describe('postern archive hold add --custodian', () => {
  it('a pattern holds what search --participant with the same pattern finds', async () => {
    const { file, patient, other } = await expiredArchive();
    const found = await cli(['archive', 'search', '-c', file, '--participant', '*@EXAMPLE.net']);
    expect(found.stdout).toContain(patient);
    expect(found.stdout).not.toContain(other);

    const hold = await addHold(file, '--custodian', '*@EXAMPLE.net');
    expect(hold.stderr).not.toMatch(/postern archive:/);
    expect(hold.code).toBe(0);
    const dry = await cli(['archive', 'purge', '--dry-run', '-c', file]);
    expect(dry.stdout).toContain(`kept ${patient}: under legal hold`);
    expect(dry.stdout).toContain(`would destroy ${other}`);
    expect(dry.stdout).toContain('1 would be destroyed, 1 held');
  });

  it('refuses a custodian that is not an address (display name, <>, empty, no domain), exit 1 naming --custodian, and records nothing', async () => {
    const { file, patient } = await expiredArchive();
    for (const custodian of ['Patient <patient@example.net>', '<patient@example.net>', 'patient', '', '*', '*@*', 'a@b@example.net', 'patient@example.net, other@example.net']) {
      const r = await addHold(file, '--custodian', custodian);
      expect(r.code, custodian).toBe(1);
      expect(r.stderr, custodian).toMatch(/^postern archive: --custodian: /);
      expect(r.stdout, custodian).toBe('');
    }
    expect((await cli(['archive', 'hold', 'list', '-c', file])).stdout).toBe('');
    const dry = await cli(['archive', 'purge', '--dry-run', '-c', file]);
    expect(dry.stdout).toContain(`would destroy ${patient}`);
  });

  it('refuses a date range that ends before it starts, and a day that does not exist', async () => {
    const { file } = await expiredArchive();
    const inverted = await addHold(file, '--custodian', 'patient@example.net', '--since', '2026-07-01', '--until', '2026-06-01');
    expect(inverted.code).toBe(1);
    expect(inverted.stderr).toMatch(/--since \(2026-07-01T00:00:00\.000Z\) is after --until \(2026-06-01T23:59:59\.999Z\)/);
    const noSuchDay = await addHold(file, '--until', '2026-02-31');
    expect(noSuchDay.code).toBe(1);
    expect(noSuchDay.stderr).toMatch(/--until: "2026-02-31"/);
    expect((await cli(['archive', 'hold', 'list', '-c', file])).stdout).toBe('');
  });
});
