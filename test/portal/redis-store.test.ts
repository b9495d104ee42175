import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/queue/redis/connect.js';
import { RedisPortalStore } from '../../src/portal/redis-store.js';
import { addressKey } from '../../src/portal/store.js';
import { SessionStore } from '../../src/portal/web/sessions.js';
import { lockedUntil, recordFailure } from '../../src/portal/web/lockout.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, keysUnder, redisSection, testPrefix } from '../queue/redis-harness.js';

const available = await devRedisAvailable();
const master = { id: 'k1', key: randomBytes(32) };

/** Two stores on two connections: two gateway instances sharing one Redis. */
async function twoInstances(prefix: string): Promise<[RedisPortalStore, RedisPortalStore]> {
  const open = async () => new RedisPortalStore(await connectRedis(redisSection(DEV_REDIS_URL, prefix)), prefix, [master], true);
  return [await open(), await open()];
}

// Skipped only on a developer machine without Redis on 127.0.0.1:6379; under CI=true devRedisAvailable throws (.ci/run starts one).
describe.skipIf(!available)('portal store on the shared Redis', () => {
  const prefix = testPrefix();
  const stores: RedisPortalStore[] = [];
  afterAll(async () => {
    for (const s of stores) await s.close();
    await deleteKeys(DEV_REDIS_URL, prefix);
  });

  it('a message stored through one instance is read through another; Redis holds no plaintext', async () => {
    const [a, b] = await twoInstances(prefix);
    stores.push(a, b);
    const m = await a.putMessage(Buffer.from('Subject: x\r\n\r\nREDIS-MARKER-77 lab results\r\n'), { createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr@clinic.test', recipients: ['p@patients.test'], queueId: 'Q1', kind: 'received' });
    expect((await b.read(m.id)).toString()).toContain('REDIS-MARKER-77');
    expect((await b.listFor((addr) => addr === 'p@patients.test')).map((x) => x.id)).toEqual([m.id]);
    await b.updateMessage(m.id, (current) => ({ ...current, revoked: { at: Date.now(), by: 'compliance' } }));
    expect((await a.get(m.id))?.revoked?.by).toBe('compliance');
    const raw = new Redis(DEV_REDIS_URL);
    try {
      for (const key of await keysUnder(DEV_REDIS_URL, prefix)) {
        const type = await raw.type(key);
        const value = type === 'string' ? await raw.getBuffer(key) : Buffer.from(JSON.stringify(await raw.zrange(key, '0', '-1')));
        expect(value?.includes('REDIS-MARKER-77')).toBe(false);
      }
    } finally {
      raw.disconnect();
    }
  });

  it('message changes through two instances at once are all kept, keep the expiry, and never bring back a purged message', async () => {
    const [a, b] = await twoInstances(prefix);
    stores.push(a, b);
    const m = await a.putMessage(Buffer.from('Subject: x\r\n\r\nbody'), { createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr@clinic.test', recipients: ['p@patients.test'], queueId: 'Q2', kind: 'received' });
    await Promise.all([
      a.updateMessage(m.id, (current) => ({ ...current, revoked: { at: 1, by: 'compliance' } })),
      ...Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).updateMessage(m.id, (current) => ({ ...current, readAt: { ...current.readAt, [`r${i}`]: i } }))),
    ]);
    const after = (await b.get(m.id))!;
    expect(after.revoked?.by).toBe('compliance');
    expect(Object.keys(after.readAt)).toHaveLength(10);
    const raw = new Redis(DEV_REDIS_URL);
    try {
      expect(await raw.pttl(`${prefix}portal:meta:${m.id}`)).toBeGreaterThan(60_000);
    } finally {
      raw.disconnect();
    }
    expect(await a.purgeExpired(Date.now() + 120_000)).toContain(m.id);
    expect(await b.updateMessage(m.id, (current) => ({ ...current, readAt: {} }))).toBeUndefined();
    expect(await a.get(m.id)).toBeUndefined();
  });

  it('rate-limit counts are shared by the instances and expire with their window; sweeping is left to Redis', async () => {
    const [a, b] = await twoInstances(prefix);
    stores.push(a, b);
    const hour = 3_600_000;
    expect(await a.countHit('logins:198.51.100.1', hour)).toBe(1);
    expect(await b.countHit('logins:198.51.100.1', hour)).toBe(2);
    expect(await a.countHit('logins:198.51.100.2', hour)).toBe(1);
    const raw = new Redis(DEV_REDIS_URL);
    try {
      const keys = (await keysUnder(DEV_REDIS_URL, prefix)).filter((k) => k.includes('portal:hits:'));
      expect(keys).toHaveLength(2);
      for (const k of keys) expect(await raw.pttl(k)).toBeGreaterThan(0);
    } finally {
      raw.disconnect();
    }
    expect(await a.sweep()).toEqual({ sessions: 0, tokens: 0, loginFailures: 0 });
  });

  it('failed logins of an address without an account: counted through both instances at once, all of them, under a hash of the address, expiring an hour after the last', async () => {
    const [a, b] = await twoInstances(prefix);
    stores.push(a, b);
    await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).updateLoginFailures('Nobody@Home.test', (current) => void recordFailure(current))));
    const seen = await b.getLoginFailures('nobody@home.test');
    expect(seen?.failures).toHaveLength(6);
    // The fifth locked it, on either instance.
    expect(lockedUntil(seen!)).toBeGreaterThan(Date.now());
    expect(await a.getLoginFailures('somebody@home.test')).toBeUndefined();
    const keys = (await keysUnder(DEV_REDIS_URL, prefix)).filter((k) => k.includes('portal:fail:'));
    expect(keys).toEqual([`${prefix}portal:fail:${addressKey('nobody@home.test')}`]);
    const raw = new Redis(DEV_REDIS_URL);
    try {
      const ttl = await raw.pttl(keys[0] as string);
      expect(ttl).toBeGreaterThan(3_500_000);
      expect(ttl).toBeLessThanOrEqual(3_600_000);
    } finally {
      raw.disconnect();
    }
  });

  it('login failures counted on two instances at once all count: the lock set through one holds on the other', async () => {
    const [a, b] = await twoInstances(prefix);
    stores.push(a, b);
    await a.putAccount({ address: 'p2@patients.test', passwordHash: 'scrypt$x', createdAt: Date.now(), failures: [] });
    const fail = (s: RedisPortalStore) =>
      s.updateAccount('p2@patients.test', (acct) => {
        if (acct) recordFailure(acct);
        return acct;
      });
    // Five failures arriving together through both instances: a lost update would leave four.
    await Promise.all([fail(a), fail(b), fail(a), fail(b), fail(a)]);
    const seen = await b.getAccount('p2@patients.test');
    expect(seen?.failures).toHaveLength(5);
    expect(lockedUntil(seen!)).toBeGreaterThan(Date.now());
  });

  it('sessions made through one instance are valid on the other, and expire in Redis', async () => {
    const [a, b] = await twoInstances(prefix);
    stores.push(a, b);
    const { id } = await new SessionStore(a, 300, 3_600_000).create('p@patients.test');
    expect((await new SessionStore(b, 300, 3_600_000).get(id))?.identity).toBe('p@patients.test');
    await new Promise((r) => setTimeout(r, 700));
    expect(await b.readSession((await import('../../src/portal/store.js')).sha256Hex(id))).toBeUndefined();
  });

  it('tokens: created through one, used through the other, stored only by hash', async () => {
    const [a, b] = await twoInstances(prefix);
    stores.push(a, b);
    const token = await a.createToken({ kind: 'reset', recipient: 'p@patients.test', expiresAt: Date.now() + 60_000 });
    const record = await b.getToken(token);
    expect(record?.recipient).toBe('p@patients.test');
    // Used through both at once: exactly one gets it.
    const used = await Promise.all([a.consumeToken(token, 'reset'), b.consumeToken(token, 'reset'), a.consumeToken(token, 'reset')]);
    expect(used.filter(Boolean)).toHaveLength(1);
    expect((await a.getToken(token))?.usedAt).toBeGreaterThan(0);
    expect(await b.consumeToken(token, 'reset')).toBeUndefined();
    // A notice token is not a reset token.
    expect(await a.consumeToken(await a.createToken({ kind: 'notice', recipient: 'p@patients.test', messageId: 'm', expiresAt: Date.now() + 60_000 }), 'reset')).toBeUndefined();
    expect((await keysUnder(DEV_REDIS_URL, prefix)).some((k) => k.includes(token))).toBe(false);
  });

  it('expired content is destroyed: ciphertext and metadata both go', async () => {
    const [a] = await twoInstances(prefix);
    stores.push(a);
    const m = await a.putMessage(Buffer.from('old'), { createdAt: Date.now() - 10_000, expiresAt: Date.now() - 1, sender: 's@x.test', recipients: ['r@y.test'], queueId: 'Q2', kind: 'received' });
    expect(await a.purgeExpired()).toContain(m.id);
    expect((await keysUnder(DEV_REDIS_URL, prefix)).filter((k) => k.includes(m.id))).toEqual([]);
    await expect(a.read(m.id)).rejects.toThrow(/no message/);
  });
});
