import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RedisCache } from '../../src/common/shared-cache.js';
import { SharedStsPolicies } from '../../src/tls/sts-policy-shared.js';
import type { StsStoreFailure } from '../../src/tls/sts-policy.js';
import { StsPolicyFiles } from '../../src/tls/sts-policy-files.js';
import { MemoryStsPolicies } from '../../src/tls/sts-policy-memory.js';
import type { MtaStsPolicy } from '../../src/tls/sts-policy.js';

const DAY = 86_400;
const T0 = Date.UTC(2026, 11, 1);
const policy = (id: string, maxAge = 7 * DAY, fetchedAt = T0): MtaStsPolicy => ({ id, mode: 'enforce', mx: [`mx.${id}.test`], maxAge, fetchedAt });

describe('MTA-STS policy store', () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'postern-sts-store-'));
    dirs.push(d);
    return join(d, 'tls', 'mta-sts');
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('full of unexpired policies, it refuses a new one rather than give up one it holds', async () => {
    const s = new MemoryStsPolicies(2);
    await s.put('a.test', policy('a'), T0);
    await s.put('b.test', policy('b'), T0);
    // A flood of new domains (an attacker's, say) must not push "a" out before its max_age.
    await s.put('c.test', policy('c'), T0 + 1000);
    expect(s.refused).toBe(1);
    expect(await s.get('a.test', T0 + 6 * DAY * 1000)).toMatchObject({ id: 'a' });
    expect(await s.get('c.test', T0 + 1000)).toBeUndefined();
    // A new version of a domain already held always fits.
    await s.put('b.test', policy('b2'), T0 + 2000);
    expect(await s.get('b.test', T0 + 2000)).toMatchObject({ id: 'b2' });
  });

  it('a policy ends at its max_age, and expired ones make room when the store is full', async () => {
    const s = new MemoryStsPolicies(2);
    await s.put('short.test', policy('short', 60), T0);
    await s.put('long.test', policy('long'), T0);
    expect(await s.get('short.test', T0 + 59_000)).toMatchObject({ id: 'short' });
    await s.put('new.test', policy('new', 7 * DAY, T0 + 61_000), T0 + 61_000);
    expect(s.refused).toBe(0);
    expect(await s.get('short.test', T0 + 61_000)).toBeUndefined();
    expect(await s.get('new.test', T0 + 61_000)).toMatchObject({ id: 'new' });
    expect(await s.get('long.test', T0 + 7 * DAY * 1000)).toBeUndefined();
  });

  it('policies are written durably and read back after a restart; expired and unreadable files are dropped', async () => {
    const d = dir();
    const first = await MemoryStsPolicies.open(d, { maxPolicies: 10, now: T0 });
    await first.put('kept.test', policy('kept'), T0);
    await first.put('short.test', policy('short', 60), T0);
    expect(JSON.parse(readFileSync(join(d, 'kept.test.json'), 'utf8'))).toEqual({ domain: 'kept.test', policy: policy('kept') });
    writeFileSync(join(d, 'garbled.test.json'), '{"domain": "garbled.test", "pol');
    writeFileSync(join(d, 'other.test.json'), JSON.stringify({ domain: 'not-other.test', policy: policy('x') }));
    // A write cut short by a crash an hour ago, and one that may still be in flight.
    writeFileSync(join(d, 'kept.test.json.123-abc.tmp'), 'half');
    utimesSync(join(d, 'kept.test.json.123-abc.tmp'), new Date(T0 - 2 * 3_600_000), new Date(T0 - 2 * 3_600_000));
    writeFileSync(join(d, 'kept.test.json.456-def.tmp'), 'half');

    const later = T0 + 3_600_000;
    const second = await MemoryStsPolicies.open(d, { maxPolicies: 10, now: later });
    expect(await second.get('kept.test', later)).toEqual(policy('kept'));
    expect(second.size).toBe(1);
    expect(readdirSync(d).sort()).toEqual(['kept.test.json', 'kept.test.json.456-def.tmp']);
  });

  it("an expired policy's file is removed, but never a fresh one another process wrote since", async () => {
    const d = dir();
    const mine = await MemoryStsPolicies.open(d, { maxPolicies: 10, now: T0 });
    await mine.put('gone.test', policy('gone', 60), T0);
    expect(await mine.get('gone.test', T0 + 61_000)).toBeUndefined();
    await vi.waitFor(() => expect(existsSync(join(d, 'gone.test.json'))).toBe(false));

    const files = new StsPolicyFiles(d);
    await files.write('shared.test', policy('old', 60));
    // Another process sharing the dataDir (a spool shard) fetched a new policy since.
    await new StsPolicyFiles(d).write('shared.test', policy('new', 7 * DAY, T0 + 30_000));
    await files.remove('shared.test', T0 + 61_000);
    expect(JSON.parse(readFileSync(join(d, 'shared.test.json'), 'utf8')).policy).toMatchObject({ id: 'new' });
  });

  it('a domain that is no file name stays in memory only', async () => {
    const d = dir();
    const s = await MemoryStsPolicies.open(d, { maxPolicies: 10, now: T0 });
    await s.put('../escape', policy('x'), T0);
    expect(await s.get('../escape', T0)).toMatchObject({ id: 'x' });
    expect(readdirSync(d)).toEqual([]);
  });

  // A policy that cannot be kept durably still applies from memory, but a restart (or the
  // other instances) will not have it: operators must be told, not find out from a count.
  it('a write or removal that fails is reported, with the domain and the reason', async () => {
    const d = dir();
    const failures: Parameters<StsStoreFailure>[0][] = [];
    const s = await MemoryStsPolicies.open(d, { maxPolicies: 10, now: T0, onFailure: (f) => failures.push(f) });
    // The directory replaced by a file (a disk remounted, a bad restore): every write fails.
    rmSync(d, { recursive: true, force: true });
    writeFileSync(d, 'not a directory');
    await s.put('partner.test', policy('p'), T0);
    expect(await s.get('partner.test', T0)).toMatchObject({ id: 'p' });
    expect(failures).toEqual([{ domain: 'partner.test', operation: 'write', error: expect.stringMatching(/ENOTDIR|EEXIST|ENOENT/) }]);
    await s.get('partner.test', T0 + 8 * DAY * 1000); // expired: its file is removed, which fails too
    await vi.waitFor(() => expect(failures.map((f) => f.operation)).toEqual(['write', 'remove']));
  });

  it('on Redis, a policy Redis does not take is reported', async () => {
    // A port that accepts and closes at once: no Redis answers there.
    const dead = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const port = (dead.address() as { port: number }).port;
    const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    redis.on('error', () => undefined);
    try {
      const failures: Parameters<StsStoreFailure>[0][] = [];
      const s = new SharedStsPolicies(new RedisCache(redis, 'postern-test:'), (f) => failures.push(f));
      await s.put('partner.test', policy('p'), T0);
      expect(failures).toEqual([{ domain: 'partner.test', operation: 'write', error: 'Redis did not take the policy' }]);
    } finally {
      redis.disconnect();
      dead.close();
    }
  });
});
