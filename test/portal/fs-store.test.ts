import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsPortalStore } from '../../src/portal/fs-store.js';
import { addressKey } from '../../src/portal/store.js';

const master = { id: 'k1', key: randomBytes(32) };
const meta = () => ({ createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr@clinic.test', recipients: ['p@patients.test'], queueId: 'Q1', kind: 'received' as const });

async function twoStores(): Promise<[FsPortalStore, FsPortalStore, string]> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-portal-fs-'));
  const a = new FsPortalStore(dir, [master]);
  const b = new FsPortalStore(dir, [master]);
  await a.open();
  await b.open();
  return [a, b, dir];
}

describe('portal file store: message updates', () => {
  it('changes made at once through two stores on one directory (two processes) are all kept', async () => {
    const [a, b] = await twoStores();
    const m = await a.putMessage(Buffer.from('Subject: x\r\n\r\nbody'), meta());
    const readers = Array.from({ length: 24 }, (_, i) => `r${i}@patients.test`);
    await Promise.all(readers.map((r, i) => (i % 2 ? a : b).updateMessage(m.id, (current) => ({ ...current, readAt: { ...current.readAt, [r]: i } }))));
    expect(Object.keys((await a.get(m.id))!.readAt).sort()).toEqual([...readers].sort());
  });

  it('a revoke is never undone by a change made from what was read before it', async () => {
    const [a, b] = await twoStores();
    const m = await a.putMessage(Buffer.from('Subject: x\r\n\r\nbody'), meta());
    await Promise.all([
      a.updateMessage(m.id, (current) => ({ ...current, revoked: { at: 1, by: 'compliance' } })),
      ...Array.from({ length: 10 }, (_, i) => b.updateMessage(m.id, (current) => ({ ...current, readAt: { ...current.readAt, [`r${i}`]: i } }))),
    ]);
    const after = (await b.get(m.id))!;
    expect(after.revoked?.by).toBe('compliance');
    expect(Object.keys(after.readAt)).toHaveLength(10);
  });

  it('no change and no message: nothing is written, nothing is made, no lock stays', async () => {
    const [a, , dir] = await twoStores();
    const m = await a.putMessage(Buffer.from('Subject: x\r\n\r\nbody'), meta());
    const before = await a.get(m.id);
    expect(await a.updateMessage(m.id, () => undefined)).toEqual(before);
    expect(await a.updateMessage('AAAAAAAAAAAAAAAA', (current) => ({ ...current, revoked: { at: 1, by: 'x' } }))).toBeUndefined();
    expect(existsSync(join(dir, 'messages', 'AAAAAAAAAAAAAAAA.json'))).toBe(false);
    expect(readdirSync(join(dir, 'messages')).sort()).toEqual([`${m.id}.bin`, `${m.id}.json`]);
  });

  it('a lock left by a process that died is broken; temp files left by one are removed at open', async () => {
    const [a, , dir] = await twoStores();
    const m = await a.putMessage(Buffer.from('Subject: x\r\n\r\nbody'), meta());
    const lock = join(dir, 'messages', `${m.id}.json.lock`);
    const temp = join(dir, 'messages', `${m.id}.json.4242-0123456789ab.tmp`);
    const freshTemp = join(dir, 'messages', `${m.id}.json.4243-0123456789ab.tmp`);
    for (const f of [lock, temp, freshTemp]) writeFileSync(f, '');
    const longAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(lock, longAgo, longAgo);
    utimesSync(temp, longAgo, longAgo);
    expect((await a.updateMessage(m.id, (current) => ({ ...current, revoked: { at: 1, by: 'x' } })))?.revoked?.by).toBe('x');
    expect(existsSync(lock)).toBe(false);
    await new FsPortalStore(dir, [master]).open();
    expect(existsSync(temp)).toBe(false);
    expect(existsSync(freshTemp)).toBe(true); // it may be a write in flight in another process
  });
});

describe('portal file store: single-use tokens', () => {
  it('a reset token used through two stores at once (two processes) is used once; expired and other kinds never', async () => {
    const [a, b] = await twoStores();
    const token = await a.createToken({ kind: 'reset', recipient: 'p@patients.test', expiresAt: Date.now() + 60_000 });
    const used = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).consumeToken(token, 'reset')));
    expect(used.filter(Boolean)).toEqual([expect.objectContaining({ recipient: 'p@patients.test' })]);
    expect((await b.getToken(token))?.usedAt).toBeGreaterThan(0);
    const expired = await a.createToken({ kind: 'reset', recipient: 'p@patients.test', expiresAt: Date.now() - 1 });
    expect(await a.consumeToken(expired, 'reset')).toBeUndefined();
    const notice = await a.createToken({ kind: 'notice', recipient: 'p@patients.test', messageId: 'm', expiresAt: Date.now() + 60_000 });
    expect(await a.consumeToken(notice, 'reset')).toBeUndefined();
  });
});

describe('portal file store: failed logins of addresses without an account', () => {
  it('failures counted through two stores at once (two processes) all count, by a hash of the address; the record ends an hour after the last and is swept', async () => {
    const [a, b, dir] = await twoStores();
    await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).updateLoginFailures('Nobody@Home.test', (current) => void current.failures.push(i))));
    expect((await b.getLoginFailures('nobody@home.test'))?.failures.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(readdirSync(join(dir, 'failures'))).toEqual([`${addressKey('nobody@home.test')}.json`]);
    expect(await a.getLoginFailures('somebody@home.test')).toBeUndefined();
    // A lock that ends later than an hour from now keeps the record until it ends.
    await a.updateLoginFailures('locked@home.test', (current) => void (current.lockedUntil = Date.now() + 2 * 3_600_000));
    expect((await a.sweep(Date.now() + 3_600_000 + 1000)).loginFailures).toBe(1);
    expect(readdirSync(join(dir, 'failures'))).toEqual([`${addressKey('locked@home.test')}.json`]);
    expect((await a.sweep(Date.now() + 2 * 3_600_000 + 1000)).loginFailures).toBe(1);
  });

  it('a record past its end is not read, even before a sweep removes it', async () => {
    const [a, , dir] = await twoStores();
    await a.updateLoginFailures('nobody@home.test', (current) => void current.failures.push(Date.now()));
    const file = join(dir, 'failures', `${addressKey('nobody@home.test')}.json`);
    writeFileSync(file, JSON.stringify({ failures: [1, 2, 3, 4, 5], endsAt: Date.now() - 1 }));
    expect(await a.getLoginFailures('nobody@home.test')).toBeUndefined();
    // Counting starts again from nothing.
    expect((await a.updateLoginFailures('nobody@home.test', (current) => void current.failures.push(9))).failures).toEqual([9]);
  });
});
