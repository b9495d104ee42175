import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJournal } from '../../src/archive/journal.js';
import { runCli } from '../helpers/cli.js';
import { archiveConfig, decisions, envelope, message, silent, tempDir } from './helpers.js';

/**
 * The filters of `postern archive search` and `export`, run as a child process. --since
 * and --until (the same parser serves hold add and the admin API) in a time zone that is
 * not UTC: a date means the same instant wherever the command runs, or it is refused
 * naming the option.
 */

const NEW_YORK = { TZ: 'America/New_York' };
const dataDir = tempDir();
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

let file: string;
/** Late on June 30 in UTC, and early on July 1 in UTC (still June 30 in New York). */
const lateJune30 = Date.parse('2026-06-30T23:30:00Z');
const earlyJuly1 = Date.parse('2026-07-01T02:00:00Z');
const ids: Record<string, string> = {};

beforeAll(async () => {
  const made = archiveConfig(dataDir);
  file = made.file;
  const journal = await openJournal(made.config, dataDir, silent);
  for (const [name, receivedAt] of [['june30', lateJune30], ['july1', earlyJuly1]] as const) {
    const e = envelope({ receivedAt, from: 'dr@hospital.test', to: ['patient@example.net'] });
    ids[name] = e.id;
    await journal!.record({ envelope: e, decisions: decisions(e), body: message('Lab results', 'text') });
  }
  await journal!.close();
});

const search = (...args: string[]) => runCli(['archive', 'search', '-c', file, '--json', ...args], NEW_YORK);
const found = async (...args: string[]) => {
  const r = await search(...args);
  expect(r.stderr).not.toMatch(/postern archive:/);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { hits: { id: string }[] }).hits.map((h) => h.id);
};

describe('archive dates under TZ=America/New_York', () => {
  it('a bare date is a whole UTC day: --until includes its last millisecond, --since starts at its first', async () => {
    expect(await found('--until', '2026-06-30')).toEqual([ids.june30]);
    expect(await found('--since', '2026-07-01')).toEqual([ids.july1]);
    expect(await found('--since', '2026-06-30', '--until', '2026-06-30')).toEqual([ids.june30]);
  });

  it('a date-time needs Z or an offset, and means that instant', async () => {
    expect(await found('--until', '2026-06-30T23:30:00Z')).toEqual([ids.june30]);
    expect(await found('--until', '2026-06-30T23:29:59.999Z')).toEqual([]);
    // 22:00 in New York on June 30 is 02:00 UTC on July 1.
    expect(await found('--since', '2026-06-30T22:00:00-04:00')).toEqual([ids.july1]);
    expect(await found('--since', '2026-06-30T22:00:00.001-04:00')).toEqual([]);
  });

  it('refuses what the host would read in its own zone, or roll over, or guess: exit 1 naming the option', async () => {
    const refused: [string, string][] = [
      ['--until', '2026-6-30'], // was 2026-06-30T04:00Z: New York midnight
      ['--until', '2026-06-30T23:59:59'], // was local time
      ['--until', '2026-02-31'], // was March 3
      ['--since', '2026-02-29'], // 2026 is no leap year
      ['--until', '2026-06-30T24:00:00Z'], // was July 1
      ['--since', '1'], // was 2001
      ['--since', 'Tuesday 2026'], // was January 1
      ['--since', '2026-06-30T12:00:00+25:00'],
      ['--since', '30.06.2026'],
    ];
    for (const [option, value] of refused) {
      const r = await search(option, value);
      expect(r.code, `${option} ${value}`).toBe(1);
      expect(r.stderr, `${option} ${value}`).toContain(`postern archive: ${option}: "${value}"`);
      expect(r.stdout, `${option} ${value}`).toBe('');
    }
  });

  it('refuses --since after --until (an empty range is a mistake, not "nothing found")', async () => {
    const r = await search('--since', '2026-07-01', '--until', '2026-06-30');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('postern archive: --since (2026-07-01T00:00:00.000Z) is after --until (2026-06-30T23:59:59.999Z)');
  });
});

describe('archive filters', () => {
  it('an empty filter is refused, not dropped: an export with --participant "" would hand out everything', async () => {
    const out = join(dataDir, 'blank.mbox');
    for (const option of ['--participant', '--sender', '--recipient', '--subject', '--message-id', '--keyword']) {
      const r = await runCli(['archive', 'export', '-c', file, '--format', 'mbox', '--out', out, option, ''], NEW_YORK);
      expect(r.code, option).toBe(1);
      expect(r.stderr, option).toContain(`postern archive: ${option} is empty`);
      expect(existsSync(out), option).toBe(false);
    }
  });
});
