import { existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openArchive } from '../../src/archive/admin.js';
import { headBytes, HeadKeys } from '../../src/archive/chain-head.js';
import { lineHash } from '../../src/archive/chain-record.js';
import { ChainWriter } from '../../src/archive/chain-writer.js';
import { openJournal } from '../../src/archive/journal.js';
import { startRetentionJob } from '../../src/archive/retention-job.js';
import type { MasterKey } from '../../src/common/envelope-crypto.js';
import type { PosternConfig } from '../../src/config/schema.js';
import { createLogger, eventBusOf } from '../../src/events/logger.js';
import { GatewayMetrics } from '../../src/events/metrics.js';
import type { Envelope } from '../../src/types.js';
import { parseMetrics, sample } from '../events/metrics-helpers.js';
import { archiveConfig, cli, DAY, decisions, envelope, message, silent, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/**
 * Two expired items (30-day rule, 40 days old): one under a custodian hold, one free.
 * A second hold follows the first, so the first hold's record sits inside the chain
 * (after the genesis and journal-0's chain-started record).
 */
async function heldArchive() {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const { config, file } = archiveConfig(dataDir, { retention: { defaultDays: 2192, rules: [{ id: 'phi-short', category: 'phi', days: 30 }] } });
  const journal = await openJournal(config, dataDir, silent);
  const envs: Envelope[] = [];
  for (const from of ['custodian@hospital.test', 'other@hospital.test']) {
    const e = envelope({ receivedAt: Date.now() - 40 * DAY, from });
    envs.push(e);
    await journal!.record({ envelope: e, decisions: decisions(e), body: message('old', 'text'), categories: ['phi'] });
  }
  await journal!.close();
  const add = async (...args: string[]) => /^(hold-[0-9a-f]+)/.exec((await cli(['archive', 'hold', 'add', '-c', file, '--by', 'counsel', ...args])).stdout)?.[1] as string;
  const held = await add('--custodian', 'custodian@hospital.test', '--reason', 'Smith v. Hospital');
  await add('--keyword', 'nothing-matches-this', '--reason', 'another case');
  const adminLog = join(dataDir, 'archive', 'chains', 'admin.log');
  const lines = readFileSync(adminLog, 'utf8').split('\n').filter(Boolean);
  const holdLine = lines.findIndex((l) => l.includes(held));
  expect(holdLine).toBe(2);
  return { dataDir, config, file, envs, held, adminLog, lines, holdLine };
}

async function alive(config: PosternConfig, dataDir: string): Promise<string[]> {
  const { reader } = await openArchive(config, dataDir);
  const ids: string[] = [];
  for await (const e of reader.items()) if (existsSync(reader.path(e)) && (await reader.meta(e).then(() => true, () => false))) ids.push(e.record.id);
  return ids.sort();
}

const writeLines = (file: string, lines: string[]) => writeFileSync(file, `${lines.join('\n')}\n`);

describe('the retention purge verifies the admin chain first', () => {
  it('a deleted hold record: the CLI purge (and its dry run) refuses with exit 3, and the held item is still there', async () => {
    const a = await heldArchive();
    writeLines(a.adminLog, a.lines.filter((_, i) => i !== a.holdLine));
    const dry = await cli(['archive', 'purge', '--dry-run', '-c', a.file]);
    expect(dry.code).toBe(3);
    expect(dry.stderr).toMatch(/REFUSED, nothing was destroyed: .*record 2 was deleted/);
    expect(dry.stdout).not.toContain('would destroy');
    const r = await cli(['archive', 'purge', '-c', a.file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/REFUSED.*admin chain.*does not verify/);
    expect(await alive(a.config, a.dataDir)).toEqual(a.envs.map((e) => e.id).sort());
    expect(readFileSync(a.adminLog, 'utf8')).not.toContain('"type":"destroy"');
  });

  it('a damaged hold record, or a release appended without its link, is refused too', async () => {
    const damaged = await heldArchive();
    writeLines(damaged.adminLog, damaged.lines.map((l, i) => (i === damaged.holdLine ? l.replace('"type":"hold"', '"type":"hold"x') : l)));
    const r1 = await cli(['archive', 'purge', '-c', damaged.file]);
    expect(r1.code).toBe(3);
    expect(r1.stderr).toMatch(/record 2 was edited/);
    expect(await alive(damaged.config, damaged.dataDir)).toHaveLength(2);

    const forged = await heldArchive();
    const last = JSON.parse(forged.lines.at(-1) as string) as { seq: number; prev: string };
    const release = { seq: last.seq + 1, prev: last.prev, at: new Date().toISOString(), type: 'release', holdId: forged.held, reason: 'forged', actor: 'nobody' };
    writeLines(forged.adminLog, [...forged.lines, JSON.stringify(release)]);
    const r2 = await cli(['archive', 'purge', '-c', forged.file]);
    expect(r2.code).toBe(3);
    expect(await alive(forged.config, forged.dataDir)).toHaveLength(2);
  });

  it('the periodic job refuses too: archive.purge-refused at error level, counted by the metrics, nothing destroyed', async () => {
    const a = await heldArchive();
    writeLines(a.adminLog, a.lines.filter((_, i) => i !== a.holdLine));
    const logs: Record<string, unknown>[] = [];
    const logger = createLogger('info', { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) });
    const metrics = new GatewayMetrics(eventBusOf(logger), {}, { processMetrics: false });
    const stop = startRetentionJob(a.config, a.dataDir, logger, { firstRunMs: 0 });
    try {
      for (let i = 0; i < 200 && !logs.some((l) => l.event === 'archive.purge-refused' || l.event === 'archive.purged'); i++) await new Promise((r) => setTimeout(r, 25));
    } finally {
      await stop();
    }
    expect(logs.find((l) => l.event === 'archive.purge-refused')).toMatchObject({ level: 'error', chain: 'admin', record: 2 });
    expect(logs.some((l) => l.event === 'archive.purged')).toBe(false);
    expect(sample(parseMetrics(await metrics.registry.metrics()), 'postern_archive_alerts_total', { event: 'archive.purge-refused' })).toBe(1);
    metrics.close();
    expect(await alive(a.config, a.dataDir)).toEqual(a.envs.map((e) => e.id).sort());
  });

  it('an intact chain still purges what no hold covers', async () => {
    const a = await heldArchive();
    const r = await cli(['archive', 'purge', '-c', a.file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`kept ${a.envs[0]!.id}: under legal hold ${a.held}`);
    expect(await alive(a.config, a.dataDir)).toEqual([a.envs[0]!.id]);
  });
});

/**
 * Rewrites a chain's log with every prev hash recomputed and a matching head: an edit
 * made by someone who knows the format. The head is signed only when `keys` are given
 * (someone who also holds the archive master key); otherwise it carries no valid MAC.
 */
function rechain(log: string, lines: string[], keys?: MasterKey[]) {
  let prev = '0'.repeat(64);
  const out = lines.map((l) => {
    const r = { ...(JSON.parse(l) as Record<string, unknown>), prev };
    const line = JSON.stringify(r);
    prev = lineHash(line);
    return line;
  });
  writeLines(log, out);
  const name = basename(log, '.log');
  const head = { seq: out.length - 1, hash: prev };
  writeFileSync(log.replace(/\.log$/, '.head'), headBytes(keys ? new HeadKeys(keys).sign(name, head) : { ...head, mac: 'f'.repeat(64) }));
}

const headOf = (log: string) => log.replace(/\.log$/, '.head');

/** What a hold's protection rests on: verify fails, every purge is refused (exit 3) and so is hold list, and both items stay. */
async function expectRefused(a: Awaited<ReturnType<typeof heldArchive>>, verifyProblem: RegExp) {
  const v = await cli(['archive', 'verify', '-c', a.file]);
  expect(v.code).toBe(1);
  expect(v.stdout).toMatch(verifyProblem);
  for (const args of [['--dry-run'], []]) {
    const r = await cli(['archive', 'purge', ...args, '-c', a.file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/REFUSED, nothing was destroyed/);
  }
  const list = await cli(['archive', 'hold', 'list', '-c', a.file]);
  expect(list.code).toBe(3);
  expect(list.stdout).toBe('');
  expect(list.stderr).toMatch(/cannot list the holds: the admin chain .*does not verify/);
  expect(await alive(a.config, a.dataDir)).toEqual(a.envs.map((e) => e.id).sort());
  expect(readFileSync(a.adminLog, 'utf8')).not.toContain('"type":"destroy"');
}

describe('the admin chain cannot be cut back or added to without the archive key', () => {
  it('a crash between the head (written first) and its records is not a break: verify passes, the next hold goes on', async () => {
    const a = await heldArchive();
    const keys = (await openArchive(a.config, a.dataDir)).keys;
    const last = JSON.parse(a.lines.at(-1) as string) as { seq: number };
    // As postern writes it for a batch whose log write never happened.
    const ahead = { seq: last.seq + 1, hash: 'a'.repeat(64), before: { seq: last.seq, hash: lineHash(a.lines.at(-1) as string) } };
    writeFileSync(headOf(a.adminLog), headBytes(new HeadKeys(keys).sign('admin', ahead)));
    expect((await cli(['archive', 'verify', '-c', a.file])).code).toBe(0);
    const hold = await cli(['archive', 'hold', 'add', '--custodian', 'x@hospital.test', '--reason', 'new case', '-c', a.file]);
    expect(hold.stdout).toContain(`(record ${last.seq + 1})`);
    expect((await cli(['archive', 'verify', '-c', a.file])).code).toBe(0);
  });

  it('cut back to its first line and its head deleted: verify fails, the purge and hold list are refused', async () => {
    const a = await heldArchive();
    writeLines(a.adminLog, a.lines.slice(0, 1));
    unlinkSync(headOf(a.adminLog));
    await expectRefused(a, /FAILED: chain admin: the head file \S+admin\.head is missing/);
  });

  it('cut back to its first line and its head rewritten to match, without the key: the head does not authenticate', async () => {
    const a = await heldArchive();
    rechain(a.adminLog, a.lines.slice(0, 1));
    await expectRefused(a, /FAILED: chain admin: the head file \S+admin\.head does not authenticate under any archive\.masterKeys entry/);
  });

  it('a forged release linked into the chain: after the head it shows; with the head rewritten it does not authenticate; a new hold does not sign it in', async () => {
    const a = await heldArchive();
    const last = JSON.parse(a.lines.at(-1) as string) as { seq: number };
    const release = JSON.stringify({ seq: last.seq + 1, prev: lineHash(a.lines.at(-1) as string), at: new Date().toISOString(), type: 'release', holdId: a.held, reason: 'forged', actor: 'nobody' });
    writeLines(a.adminLog, [...a.lines, release]);
    await expectRefused(a, new RegExp(`FAILED: chain admin: records ${last.seq + 1}\\.\\.${last.seq + 1} follow the head`));
    const hold = await cli(['archive', 'hold', 'add', '--custodian', 'x@hospital.test', '--reason', 'new case', '-c', a.file]);
    expect(hold.code).toBe(1);
    expect(hold.stderr).toMatch(/admin chain .*does not verify: records \d+\.\.\d+ follow its head/);
    rechain(a.adminLog, [...a.lines, release]);
    await expectRefused(a, /the head file \S+admin\.head does not authenticate/);
  });
});

describe('the admin chain cannot be deleted to lift the holds', () => {
  it('admin.log and admin.head deleted: verify fails naming it, every purge is refused, the held item stays; a restarted journal or a new hold does not make it anew', async () => {
    const a = await heldArchive();
    unlinkSync(a.adminLog);
    unlinkSync(a.adminLog.replace(/\.log$/, '.head'));
    const v = await cli(['archive', 'verify', '-c', a.file]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/FAILED: chain admin: the admin chain \S+admin\.log is missing, but journal-0 was started with it: it was deleted/);
    for (const args of [['--dry-run'], []]) {
      const r = await cli(['archive', 'purge', ...args, '-c', a.file]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/REFUSED, nothing was destroyed: .*admin\.log is missing/);
    }
    // The gateway starting again journals on, but leaves the admin chain missing.
    const journal = await openJournal(a.config, a.dataDir, silent);
    await journal!.close();
    expect(existsSync(a.adminLog)).toBe(false);
    const hold = await cli(['archive', 'hold', 'add', '--custodian', 'x@hospital.test', '--reason', 'new case', '-c', a.file]);
    expect(hold.code).toBe(1);
    expect(hold.stderr).toMatch(/admin chain .*does not verify: the admin chain \S+ is missing/);
    expect(existsSync(a.adminLog)).toBe(false);
    expect(await alive(a.config, a.dataDir)).toEqual(a.envs.map((e) => e.id).sort());
  });

  it('an admin chain deleted and made anew: verify names it, the purge is refused', async () => {
    const a = await heldArchive();
    unlinkSync(a.adminLog);
    unlinkSync(a.adminLog.replace(/\.log$/, '.head'));
    await (await ChainWriter.open(join(a.dataDir, 'archive', 'chains'), 'admin', (await openArchive(a.config, a.dataDir)).keys)).close();
    const v = await cli(['archive', 'verify', '-c', a.file]);
    expect(v.code).toBe(1);
    expect(v.stdout).toContain('FAILED: chain admin: the admin chain is not the one journal-0 was started with');
    const r = await cli(['archive', 'purge', '-c', a.file]);
    expect(r.code).toBe(3);
    expect(await alive(a.config, a.dataDir)).toEqual(a.envs.map((e) => e.id).sort());
  });

  it('a fresh archive has its admin chain before anything is journaled, and verify finds both chains intact', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { config, file } = archiveConfig(dataDir);
    const journal = await openJournal(config, dataDir, silent);
    await journal!.close();
    const chains = join(dataDir, 'archive', 'chains');
    const admin = readFileSync(join(chains, 'admin.log'), 'utf8').split('\n')[0] as string;
    expect(JSON.parse(readFileSync(join(chains, 'journal-0.log'), 'utf8').split('\n')[0] as string)).toMatchObject({ type: 'genesis', chain: 'journal-0', admin: lineHash(admin) });
    const v = await cli(['archive', 'verify', '-c', file]);
    // The admin chain: its genesis, then journal-0 listed with its genesis hash.
    const journalGenesis = readFileSync(join(chains, 'journal-0.log'), 'utf8').split('\n')[0] as string;
    expect(JSON.parse(readFileSync(join(chains, 'admin.log'), 'utf8').split('\n')[1] as string)).toMatchObject({ seq: 1, type: 'chain-started', chain: 'journal-0', genesisHash: lineHash(journalGenesis) });
    expect(v.stdout).toMatch(/^chain admin: 2 record\(s\).*\nchain journal-0: 1 record\(s\)/);
    expect(v.stdout).toContain('OK: every chain is intact'); // a gateway journals here, nothing yet
    expect(v.code).toBe(0);
  });
});

describe('the purge decides expiry on authenticated data', () => {
  /** A one-day-old phi item (30-day rule): never expired. */
  async function youngItem() {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { config, file } = archiveConfig(dataDir, { retention: { defaultDays: 2192, rules: [{ id: 'phi-short', category: 'phi', days: 30 }] } });
    const journal = await openJournal(config, dataDir, silent);
    const e = envelope({ receivedAt: Date.now() - DAY });
    await journal!.record({ envelope: e, decisions: decisions(e), body: message('young', 'text'), categories: ['phi'] });
    await journal!.close();
    const log = join(dataDir, 'archive', 'chains', 'journal-0.log');
    const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    const aged = lines.map((l) => l.replace(`"receivedAt":${e.receivedAt}`, `"receivedAt":${e.receivedAt - 40 * DAY}`));
    expect(aged).not.toEqual(lines);
    return { dataDir, config, file, e, log, aged };
  }

  it('receivedAt edited in the index: the chain does not verify, the purge keeps every item of it', async () => {
    const y = await youngItem();
    writeLines(y.log, y.aged);
    const r = await cli(['archive', 'purge', '-c', y.file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/kept every item of chain journal-0: it does not verify \(record 1 was edited/);
    expect(r.stdout).not.toContain('destroyed ');
    expect(await alive(y.config, y.dataDir)).toEqual([y.e.id]);
  });

  it('receivedAt edited and the chain re-hashed: the sealed metadata disagrees, the item is kept; verify names the record', async () => {
    const y = await youngItem();
    // Someone who holds the archive key too: the head verifies, the sealed metadata does not.
    rechain(y.log, y.aged, (await openArchive(y.config, y.dataDir)).keys);
    const r = await cli(['archive', 'purge', '-c', y.file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`kept ${y.e.id}: could not be checked (its index record says it was received`);
    expect(r.stdout).toContain('the index was edited');
    expect(await alive(y.config, y.dataDir)).toEqual([y.e.id]);
    const v = await cli(['archive', 'verify', '-c', y.file]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/record 1 \(item \S+\): the record's receivedAt \(\S+\) is not the item's/);
  });
});
