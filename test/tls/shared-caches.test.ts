import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryCache, RedisCache } from '../../src/common/shared-cache.js';
import { TlsCapabilityCache } from '../../src/tls/capability-cache.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, testPrefix } from '../queue/redis-harness.js';

const available = await devRedisAvailable();

describe('shared caches', () => {
  it('memory: values expire and the oldest entries go first', async () => {
    const c = new MemoryCache(2);
    await c.set('a', 1, 10_000);
    await c.set('b', 2, 10_000);
    await c.set('c', 3, 10_000);
    expect(await c.get('a')).toBeUndefined();
    expect(await c.get('c')).toBe(3);
    await c.set('d', 4, 1);
    await new Promise((r) => setTimeout(r, 5));
    expect(await c.get('d')).toBeUndefined();
  });

  // Skipped only on a developer machine without Redis on 127.0.0.1:6379; under CI=true devRedisAvailable throws (.ci/run starts one).
  describe.skipIf(!available)('on the shared Redis', () => {
    const prefix = testPrefix();
    const clients: Redis[] = [];
    const client = () => {
      const r = new Redis(DEV_REDIS_URL);
      clients.push(r);
      return r;
    };
    afterAll(async () => {
      for (const r of clients) r.disconnect();
      await deleteKeys(DEV_REDIS_URL, prefix);
    });

    it('what one instance learns of an MX host, another foresees', async () => {
      const a = new TlsCapabilityCache(60_000, 100, new RedisCache(client(), prefix));
      const b = new TlsCapabilityCache(60_000, 100, new RedisCache(client(), prefix));
      a.record('mx.plain.test', 25, { starttls: false, verdict: 'starttls-not-supported' });
      await new Promise((r) => setTimeout(r, 100)); // the write-through
      expect(b.foreseesFailure('mx.plain.test', 25, 'verify')).toBeUndefined(); // first look: fetched in the background
      await new Promise((r) => setTimeout(r, 100));
      expect(b.foreseesFailure('mx.plain.test', 25, 'verify')?.verdict).toBe('starttls-not-supported');
      expect(b.foreseesFailure('mx.plain.test', 25, 'may')).toBeUndefined();
    });

    it('a Redis that is gone is a miss, never an error', async () => {
      const dead = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
      dead.on('error', () => undefined);
      const cache = new RedisCache(dead, prefix);
      await cache.set('k', 1, 1000);
      expect(await cache.get('k')).toBeUndefined();
      expect(cache.errors).toBe(2);
    });
  });
});
