import { cpSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADER_BYTES } from '../../src/archive/item-file.js';
import { openJournal } from '../../src/archive/journal.js';
import { allFiles, archiveConfig, cli, decisions, envelope, message, silent, tempDir } from './helpers.js';

/**
 * A journal of four items is written once (records 1-3 small, in one segment file;
 * record 4 large, in its own file); each case tampers with its own copy and runs the
 * built CLI's `postern archive verify` on it.
 */
const dirs: string[] = [];
let pristine: string;
let configText: string;
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

beforeAll(async () => {
  pristine = tempDir();
  dirs.push(pristine);
  const { config, file } = archiveConfig(pristine);
  configText = readFileSync(file, 'utf8');
  const journal = await openJournal(config, pristine, silent);
  for (let i = 1; i <= 4; i++) {
    const body = message(`item ${i}`, i === 4 ? 'x'.repeat(300 * 1024) : `body ${i}`);
    const e = envelope({ size: body.length });
    await journal!.record({ envelope: e, decisions: decisions(e), body });
  }
  await journal!.close();
});

/** A copy of the archive and a config pointing at it. */
function copy(): { dataDir: string; config: string; log: string } {
  const dataDir = tempDir();
  dirs.push(dataDir);
  cpSync(join(pristine, 'archive'), join(dataDir, 'archive'), { recursive: true });
  const config = join(dataDir, 'postern.yaml');
  writeFileSync(config, configText.replace(`dataDir: ${pristine}`, `dataDir: ${dataDir}`));
  return { dataDir, config, log: join(dataDir, 'archive', 'chains', 'journal-0.log') };
}

const lines = (log: string) => readFileSync(log, 'utf8').split('\n').filter(Boolean);
const writeLines = (log: string, ls: string[]) => writeFileSync(log, `${ls.join('\n')}\n`);
/** Where the entry of the item record at a line of the log is. */
function entryOf(dataDir: string, log: string, n: number) {
  const r = JSON.parse(lines(log)[n] as string) as { file: string; offset: number; size: number };
  return { path: join(dataDir, 'archive', r.file), start: r.offset, end: r.offset + HEADER_BYTES + r.size };
}

async function verify(config: string, ...flags: string[]) {
  return cli(['archive', 'verify', '-c', config, ...flags]);
}

describe('postern archive verify', () => {
  it('passes an untouched archive', async () => {
    const { config } = copy();
    const r = await verify(config);
    expect(r.stdout).toContain('OK: every chain is intact');
    expect(r.stdout).toContain('4 item(s) checked');
    expect(r.code).toBe(0);
  });

  it('names an edited index record', async () => {
    const { config, log } = copy();
    const ls = lines(log);
    ls[2] = (ls[2] as string).replace(/"size":(\d+)/, (_, n: string) => `"size":${Number(n) + 1}`);
    writeLines(log, ls);
    const r = await verify(config);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAILED: chain journal-0: record 2 was edited: its hash does not match the prev hash stored in record 3');
  });

  it('names an edited last record (checked against the head)', async () => {
    const { config, log } = copy();
    const ls = lines(log);
    ls[4] = (ls[4] as string).replace(/"at":"[^"]+"/, '"at":"2020-01-01T00:00:00.000Z"');
    writeLines(log, ls);
    const r = await verify(config);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('record 4 was edited: its hash does not match the index head');
  });

  it('names a deleted index record, in the middle and at the end', async () => {
    const middle = copy();
    const ls = lines(middle.log);
    writeLines(middle.log, [...ls.slice(0, 2), ...ls.slice(3)]);
    const r = await verify(middle.config);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAILED: chain journal-0: record 2 was deleted: the record found in its place has seq 3');

    const end = copy();
    writeLines(end.log, lines(end.log).slice(0, 4));
    const r2 = await verify(end.config);
    expect(r2.code).toBe(1);
    expect(r2.stdout).toContain('records 4..4 were deleted from the end of the index');
  });

  it('names an altered and a missing item file', async () => {
    const altered = copy();
    const entry = entryOf(altered.dataDir, altered.log, 2);
    const bytes = readFileSync(entry.path);
    bytes[entry.end - 3] = (bytes[entry.end - 3] as number) ^ 0x20;
    writeFileSync(entry.path, bytes);
    const r = await verify(altered.config);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAILED: chain journal-0: record 2 \(item [0-9A-Z]{18}\): item file altered: its content fails authentication/);

    const missing = copy();
    unlinkSync(entryOf(missing.dataDir, missing.log, 4).path);
    const r2 = await verify(missing.config, '--quick');
    expect(r2.code).toBe(1);
    expect(r2.stdout).toMatch(/FAILED: chain journal-0: record 4 \(item [0-9A-Z]{18}\): item file missing/);
  });

  it('notices an entry swapped for another one, and a file no record names', async () => {
    const swapped = copy();
    const a = entryOf(swapped.dataDir, swapped.log, 1);
    const b = entryOf(swapped.dataDir, swapped.log, 2);
    const bytes = readFileSync(a.path);
    expect(a.end - a.start).toBe(b.end - b.start);
    bytes.subarray(b.start, b.end).copy(bytes, a.start);
    writeFileSync(a.path, bytes);
    const r = await verify(swapped.config, '--quick');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('record 1 (item');
    expect(r.stdout).toContain('it does not hold the entry this record was written for');

    const orphan = copy();
    const stray = join(orphan.dataDir, 'archive', 'items', '2020', 'stray.item');
    cpSync(entryOf(orphan.dataDir, orphan.log, 4).path, stray);
    const r2 = await verify(orphan.config, '--quick');
    expect(r2.code).toBe(1);
    expect(r2.stdout).toContain('item file items/2020/stray.item has no index record');
    expect(allFiles(join(orphan.dataDir, 'archive', 'items'))).toHaveLength(3);
  });

  it('says there is nothing to verify, with exit 4, for a data directory without an archive; one a gateway opened is checked (OK, exit 0)', async () => {
    const empty = tempDir();
    dirs.push(empty);
    const config = join(empty, 'postern.yaml');
    writeFileSync(config, configText.replace(`dataDir: ${pristine}`, `dataDir: ${empty}`));
    const r = await verify(config);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain(`NOTHING TO VERIFY: no item was journaled under ${join(empty, 'archive')}`);
    expect(r.stdout).not.toContain('OK');
    // A gateway opened the archive (admin and journal chains made, journal-0 listed) but journaled nothing.
    const journal = await openJournal(archiveConfig(empty).config, empty, silent);
    await journal!.close();
    const r2 = await verify(config, '--json');
    expect(r2.code).toBe(0);
    expect(JSON.parse(r2.stdout)).toMatchObject({ found: true, items: 0, problems: [], chains: [{ name: 'admin', records: 2 }, { name: 'journal-0', records: 1 }] });
  });

  it('names a whole journal chain deleted with its items, and one deleted and made anew; the purge is refused', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { config, file } = archiveConfig(dataDir);
    for (const shard of [0, 1]) {
      const journal = await openJournal(config, dataDir, silent, { shard });
      const e = envelope();
      await journal!.record({ envelope: e, decisions: decisions(e), body: message(`shard ${shard}`, 'body') });
      await journal!.close();
    }
    expect((await verify(file)).code).toBe(0);
    const chains = join(dataDir, 'archive', 'chains');
    const shard1 = allFiles(join(dataDir, 'archive')).filter((f) => basename(f).startsWith('journal-1.'));
    expect(shard1.map((f) => basename(f)).sort()).toEqual(['journal-1.0.seg', 'journal-1.head', 'journal-1.log', 'journal-1.segment']);
    shard1.forEach((f) => unlinkSync(f));
    const r = await verify(file);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`FAILED: chain journal-1: the admin chain names journal-1 \\(its record 2\\) but ${join(chains, 'journal-1.log')} is missing or empty: the chain was deleted`));
    const purge = await cli(['archive', 'purge', '-c', file]);
    expect(purge.code).toBe(3);
    expect(purge.stderr).toMatch(/REFUSED, nothing was destroyed: a journal chain the admin chain lists is missing or was replaced: the admin chain names journal-1/);
    // The gateway of shard 1 starting again makes a new journal-1: not the one recorded.
    await (await openJournal(config, dataDir, silent, { shard: 1 }))!.close();
    const again = await verify(file);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/FAILED: chain journal-1: journal-1 is not the chain the admin chain recorded \(its record 2\): .*it was deleted and made anew/);
  });
});
