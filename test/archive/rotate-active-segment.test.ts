import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { parse, stringify } from 'yaml';
import { openJournal } from '../../src/archive/journal.js';
import { allFiles, archiveConfig, cli, DAY, decisions, envelope, message, silent, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
afterEach(() => vi.restoreAllMocks());

type Journal = NonNullable<Awaited<ReturnType<typeof openJournal>>>;
const record = async (journal: Journal, subject: string, receivedAt?: number) => {
  const e = envelope({ receivedAt });
  await journal.record({ envelope: e, decisions: decisions(e), body: message(subject, `body of ${subject}`) });
};

/** A data directory whose journal-0 once ran with its clock 400 days ahead: its first segment sits in a folder dated next year. */
async function clockWasAhead(): Promise<{ dataDir: string; config: ReturnType<typeof archiveConfig>['config']; file: string }> {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const { config, file } = archiveConfig(dataDir);
  const realNow = Date.now.bind(Date);
  vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 400 * DAY);
  const journal = (await openJournal(config, dataDir, silent))!;
  await record(journal, 'written while the clock was ahead', Date.now());
  await journal.close();
  vi.restoreAllMocks(); // the clock was put right
  return { dataDir, config, file };
}

const segments = (dataDir: string) =>
  allFiles(join(dataDir, 'archive', 'items'))
    .filter((f) => f.endsWith('.seg'))
    .map((f) => relative(join(dataDir, 'archive'), f))
    .sort();

describe('archive segments after the clock stepped back', () => {
  it('rotate-key leaves alone the segment a running gateway appends to, though a newer day folder exists: no acknowledged item is lost', async () => {
    const { dataDir, config, file } = await clockWasAhead();
    // The gateway, running (this process holds the chain's lock).
    const journal = (await openJournal(config, dataDir, silent))!;
    await record(journal, 'A, before the rotation');
    expect(segments(dataDir)).toHaveLength(2);

    const raw = parse(readFileSync(file, 'utf8')) as { archive: { masterKeys: { id: string; key: string }[] } };
    const rotated = join(dataDir, 'rotated.yaml');
    writeFileSync(rotated, stringify({ ...raw, archive: { ...raw.archive, masterKeys: [{ id: 'k2', key: randomBytes(32).toString('base64') }, ...raw.archive.masterKeys] } }));
    const rotate = await cli(['archive', 'rotate-key', '--by', 'ops', '-c', rotated]);
    expect(rotate.stdout).toContain('re-wrapped 1 item key(s) with master key k2');
    expect(rotate.stdout).toContain('1 item(s) in segments a running gateway is still writing were left as they are');

    await record(journal, 'B, after the rotation');
    await journal.close();
    const verify = await cli(['archive', 'verify', '-c', rotated]);
    expect(verify.stdout).toContain('OK: every chain is intact and every item matches its record');
    expect(verify.code).toBe(0);
    const search = await cli(['archive', 'search', '--keyword', 'body of B', '-c', rotated]);
    expect(search.stdout).toContain('"B, after the rotation"');
    expect(search.code).toBe(0);
  });

  it('a restarted gateway numbers its new segment after the highest one in any day folder, and its first write succeeds', async () => {
    const { dataDir, config } = await clockWasAhead();
    for (const run of ['second', 'third', 'fourth']) {
      const journal = (await openJournal(config, dataDir, silent))!;
      await record(journal, `${run} run`);
      await journal.close();
    }
    const numbers = segments(dataDir).map((s) => Number(/\.(\d+)\.seg$/.exec(s)![1]));
    expect(numbers.sort()).toEqual([0, 1, 2, 3]);
  });
});
