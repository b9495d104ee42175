import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchive, withAdminChain } from '../../src/archive/admin.js';
import { verifiedAdminState } from '../../src/archive/admin-state.js';
import { walkChain } from '../../src/archive/chain-walk.js';
import { ChainBusy } from '../../src/archive/chain-writer.js';
import type { ArchiveAdmin } from '../../src/archive/admin.js';
import { openJournal } from '../../src/archive/journal.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { adminConfig, call, KEYS, startAdmin } from '../api/admin-helpers.js';
import { archiveConfig, cli, silent, tempDir } from './helpers.js';

/**
 * One appender per chain, or two records get the same seq and the admin chain (holds,
 * releases, destructions) is broken for good: verify fails, every purge is refused.
 */

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const adminLines = (dataDir: string) => readFileSync(join(dataDir, 'archive', 'chains', 'admin.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; type: string; holdId?: string });

/** An archive with its admin chain (genesis, journal-0 listed), and a config file for the CLI. */
async function freshArchive(): Promise<{ dataDir: string; file: string; archive: ArchiveAdmin }> {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const { config, file } = archiveConfig(dataDir);
  await (await openJournal(config, dataDir, silent))!.close();
  return { dataDir, file, archive: await openArchive(config, dataDir) };
}

const rotateRecord = (actor: string) => ({ type: 'rotate' as const, keyId: 'k1', count: 0, actor });

describe('the admin API: hold changes at the same moment', () => {
  const s = scenario({ checkArchive: false });
  let gw: TestGateway;
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  const api = (path: string) => `${admin.url}/api/v1${path}`;
  const post = (path: string, json: unknown) => call(api(path), { method: 'POST', key: KEYS.adm, json });

  beforeAll(async () => {
    gw = await s.gateway({ admin: await adminConfig() });
    admin = await startAdmin(gw);
  });
  afterAll(async () => {
    await admin?.close();
  });

  it('two holds placed at once get a record each, in turn; the admin chain still verifies', async () => {
    const [a, b] = await Promise.all([post('/archive/holds', { reason: 'case A', custodian: 'a@example.net' }), post('/archive/holds', { reason: 'case B', custodian: 'b@example.net' })]);
    expect([a?.status, b?.status]).toEqual([200, 200]);
    const seqs = [(a?.body as { seq: number }).seq, (b?.body as { seq: number }).seq].sort();
    expect(seqs[1]).toBe((seqs[0] as number) + 1);
    const list = await call(api('/archive/holds'), { key: KEYS.ro });
    expect(list.status).toBe(200);
    expect((list.body as { holds: { custodian: string }[] }).holds.map((h) => h.custodian).sort()).toEqual(['a@example.net', 'b@example.net']);
    const { reader } = await openArchive(gw.config, gw.dataDir);
    expect((await walkChain(reader, 'admin')).problem).toBeUndefined();
  });

  it('one hold released three times at once: one release is recorded, the others are refused (already released)', async () => {
    const hold = await post('/archive/holds', { reason: 'case C', custodian: 'c@example.net' });
    const holdId = (hold.body as { holdId: string }).holdId;
    const releases = await Promise.all([1, 2, 3].map(() => post(`/archive/holds/${holdId}/release`, { reason: 'settled' })));
    expect(releases.map((r) => r.status).sort()).toEqual([200, 400, 400]);
    for (const r of releases.filter((x) => x.status === 400)) expect((r.body as { message: string }).message).toMatch(new RegExp(`hold ${holdId} was already released`));
    expect(adminLines(gw.dataDir).filter((r) => r.type === 'release' && r.holdId === holdId)).toHaveLength(1);
  });

  it('a hold placed while the admin chain does not verify is refused with 409, as a release is', async () => {
    const hold = await post('/archive/holds', { reason: 'case D', custodian: 'd@example.net' });
    const holdId = (hold.body as { holdId: string }).holdId;
    appendFileSync(join(gw.dataDir, 'archive', 'chains', 'admin.log'), `${JSON.stringify({ seq: 99, prev: 'x', at: new Date().toISOString(), type: 'release', holdId, reason: 'forged', actor: 'x' })}\n`);
    const placed = await post('/archive/holds', { reason: 'case E', custodian: 'e@example.net' });
    expect(placed.status).toBe(409);
    expect((placed.body as { message: string }).message).toMatch(/the admin chain .*does not verify/);
    expect((await post(`/archive/holds/${holdId}/release`, { reason: 'settled' })).status).toBe(409);
  });
});

describe('the admin chain in one process', () => {
  it('tasks that open it at once append one after the other; one that may not wait is told it is in use', async () => {
    const { dataDir, archive } = await freshArchive();
    const appended = await Promise.all(Array.from({ length: 6 }, (_, i) => withAdminChain(archive, (chain) => chain.append(rotateRecord(`task ${i}`)))));
    expect(appended.map((r) => r.seq).sort((x, y) => x - y)).toEqual([2, 3, 4, 5, 6, 7]);
    expect((await walkChain(archive, 'admin')).problem).toBeUndefined();

    let letGo!: () => void;
    let inside!: () => void;
    const entered = new Promise<void>((r) => (inside = r));
    const holding = withAdminChain(archive, () => {
      inside();
      return new Promise<void>((r) => (letGo = r));
    });
    await entered;
    // As the retention job asks (no wait): skipped, not a second appender.
    const refused = await withAdminChain(archive, (chain) => chain.append(rotateRecord('job')), 0).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ChainBusy);
    expect((refused as Error).message).toMatch(/archive chain admin is in use by another process/);
    letGo();
    await holding;
    expect((await verifiedAdminState(archive)).holds.size).toBe(0);
    expect(adminLines(dataDir).map((r) => r.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('the admin chain lock file', () => {
  const lockOf = (dataDir: string) => join(dataDir, 'archive', 'chains', 'admin.lock');

  it('an empty lock file, as another process leaves it for a moment while it takes the lock, is not taken over; an old empty one is', async () => {
    const { dataDir, archive } = await freshArchive();
    writeFileSync(lockOf(dataDir), '');
    const refused = await withAdminChain(archive, (chain) => chain.append(rotateRecord('too early')), 300).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ChainBusy);
    expect(existsSync(lockOf(dataDir))).toBe(true);
    expect(adminLines(dataDir)).toHaveLength(2);
    // Left by a crash long ago: stale.
    const longAgo = new Date(Date.now() - 60_000);
    utimesSync(lockOf(dataDir), longAgo, longAgo);
    await withAdminChain(archive, (chain) => chain.append(rotateRecord('later')), 300);
    expect(adminLines(dataDir).map((r) => r.seq)).toEqual([0, 1, 2]);
    expect(existsSync(lockOf(dataDir))).toBe(false);
  });

  it('a lock file naming this process that this process does not hold (left by an earlier process with the same pid) is taken over', async () => {
    const { dataDir, archive } = await freshArchive();
    writeFileSync(lockOf(dataDir), String(process.pid));
    await withAdminChain(archive, (chain) => chain.append(rotateRecord('container restart')), 300);
    expect(adminLines(dataDir).map((r) => r.seq)).toEqual([0, 1, 2]);
  });

  it('many processes appending at the same moment take turns, also when they all find a lock left by a dead process: no seq twice, verify passes', async () => {
    const { dataDir, file, archive } = await freshArchive();
    const processes = 12;
    const rounds = 4;
    for (let round = 0; round < rounds; round++) {
      // Every other round starts from a lock a killed process left (a pid above any pid_max).
      if (round % 2) writeFileSync(lockOf(dataDir), '999999999');
      await Promise.all(Array.from({ length: processes }, () => appendFromChild(dataDir, archive, Date.now() + 700)));
    }
    const seqs = adminLines(dataDir).map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: 2 + processes * rounds }, (_, i) => i));
    const v = await cli(['archive', 'verify', '--quick', '-c', file]);
    expect(v.stdout).toContain('OK: every chain is intact');
  });
});

const run = promisify(execFile);

/** A separate node process (the built dist/) that appends one record to the admin chain once the clock reaches `at`. */
async function appendFromChild(dataDir: string, archive: ArchiveAdmin, at: number): Promise<void> {
  const dist = join(process.cwd(), 'dist', 'archive');
  const script = `
    const { withAdminChain } = await import(${JSON.stringify(join(dist, 'admin.js'))});
    const { ArchiveLayout } = await import(${JSON.stringify(join(dist, 'layout.js'))});
    const layout = ArchiveLayout.forDataDir(process.argv[1]);
    const keys = [{ id: 'k1', key: Buffer.from(process.argv[2], 'base64') }];
    while (Date.now() < Number(process.argv[3])) {} // all at once
    await withAdminChain({ layout, keys }, (c) => c.append({ type: 'rotate', keyId: 'k1', count: 0, actor: 'p' + process.pid }), 30000);
  `;
  const key = archive.keys[0]!.key.toString('base64');
  await run(process.execPath, ['--input-type=module', '-e', script, dataDir, key, String(at)]);
}
