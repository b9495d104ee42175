import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openArchive, withAdminChain } from '../../src/archive/admin.js';
import { headBytes, HeadKeys, readHead } from '../../src/archive/chain-head.js';
import { lineHash } from '../../src/archive/chain-record.js';
import { openJournal } from '../../src/archive/journal.js';
import { archiveConfig, cli, DAY, decisions, envelope, message, silent, tempDir } from './helpers.js';

/**
 * The admin chain writes its head before its records, naming the record before them, so
 * a crash between the two can be told from a deletion. Once the records are durable the
 * head must stop naming it: otherwise the last batch (a hold just placed) can be cut off
 * the log by anyone, and looks like that crash.
 */

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** One item past its 30-day retention, and a hold on it (admin record 2, the last). */
async function heldItem() {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const { config, file } = archiveConfig(dataDir, { retention: { defaultDays: 30 } });
  const journal = await openJournal(config, dataDir, silent);
  const e = envelope({ receivedAt: Date.now() - 40 * DAY });
  await journal!.record({ envelope: e, decisions: decisions(e), body: message('Lab results', 'text') });
  await journal!.close();
  const hold = await cli(['archive', 'hold', 'add', '-c', file, '--custodian', 'patient@example.net', '--reason', 'Smith v. Hospital', '--by', 'counsel']);
  expect(hold.stdout).toContain('(record 2)');
  const chains = join(dataDir, 'archive', 'chains');
  const adminLog = join(chains, 'admin.log');
  const item = () => {
    const r = JSON.parse(readFileSync(join(chains, 'journal-0.log'), 'utf8').split('\n')[1] as string) as { file: string };
    return existsSync(join(dataDir, 'archive', r.file));
  };
  return { dataDir, config, file, adminLog, headFile: join(chains, 'admin.head'), item };
}

const lines = (log: string) => readFileSync(log, 'utf8').split('\n').filter(Boolean);
const cutLastLine = (log: string) => writeFileSync(log, `${lines(log).slice(0, -1).join('\n')}\n`);

describe('the last admin record cut off the log', () => {
  it('a hold just placed, deleted: verify names it, the hold list and the purge are refused, the item and the head stay', async () => {
    const a = await heldItem();
    expect((await cli(['archive', 'purge', '--dry-run', '-c', a.file])).stdout).toContain('1 held');
    const head = readFileSync(a.headFile);
    cutLastLine(a.adminLog);

    const v = await cli(['archive', 'verify', '-c', a.file]);
    expect(v.stdout).toMatch(/FAILED: chain admin: records 2\.\.2 were deleted from the end of the index/);
    expect(v.code).toBe(1);
    const list = await cli(['archive', 'hold', 'list', '--all', '-c', a.file]);
    expect(list.code).toBe(3);
    expect(list.stderr).toMatch(/cannot list the holds: the admin chain .*does not verify/);
    const purge = await cli(['archive', 'purge', '-c', a.file]);
    expect(purge.code).toBe(3);
    expect(purge.stderr).toMatch(/REFUSED, nothing was destroyed: .*records were removed/);
    expect(a.item()).toBe(true);
    // The evidence is not signed over.
    expect(readFileSync(a.headFile).equals(head)).toBe(true);
    expect((await cli(['archive', 'verify', '-c', a.file])).code).toBe(1);
  });

  it('a head a crash left naming the record before its batch, once the batch is on disk, is written again at the next open: cutting the batch off then shows', async () => {
    const a = await heldItem();
    const keys = (await openArchive(a.config, a.dataDir)).keys;
    const [, chainStarted, hold] = lines(a.adminLog) as [string, string, string];
    // The records reached the disk, the head was not written a second time.
    writeFileSync(a.headFile, headBytes(new HeadKeys(keys).sign('admin', { seq: 2, hash: lineHash(hold), before: { seq: 1, hash: lineHash(chainStarted) } })));
    expect((await cli(['archive', 'verify', '-c', a.file])).code).toBe(0);

    const { reader } = await openArchive(a.config, a.dataDir);
    await withAdminChain(reader, async () => undefined);
    expect(await readHead(a.headFile)).toEqual(expect.not.objectContaining({ before: expect.anything() }));
    cutLastLine(a.adminLog);
    const v = await cli(['archive', 'verify', '-c', a.file]);
    expect(v.stdout).toMatch(/FAILED: chain admin: records 2\.\.2 were deleted/);
    expect(v.code).toBe(1);
    expect((await cli(['archive', 'purge', '-c', a.file])).code).toBe(3);
    expect(a.item()).toBe(true);
  });

  it('every admin batch leaves its head without `before` once its records are durable', async () => {
    const a = await heldItem();
    const head = await readHead(a.headFile);
    expect(head).toMatchObject({ seq: 2, hash: lineHash(lines(a.adminLog)[2] as string) });
    expect(head?.before).toBeUndefined();
  });
});
