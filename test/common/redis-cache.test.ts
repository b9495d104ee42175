import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { generateKey, readKey } from 'openpgp';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisCache } from '../../src/common/shared-cache.js';
import { validateConfig } from '../../src/config/load.js';
import { DeliveryDns } from '../../src/deliver/dns.js';
import { createLogger } from '../../src/events/logger.js';
import { KeyLookup } from '../../src/keys/lookup.js';
import { KeyStore } from '../../src/keys/store.js';
import { wkdHash } from '../../src/keys/wkd.js';
import { TestDns } from '../helpers/dns-server.js';
import { TestHttps } from '../helpers/https-server.js';
import { createTestCa } from '../helpers/pki.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, testPrefix } from '../queue/redis-harness.js';

const available = await devRedisAvailable();
const FOUND = 'pat@dest.test';
const MISSING = 'nobody@dest.test';
const wkdPath = (local: string) => `/.well-known/openpgpkey/dest.test/hu/${wkdHash(local)}?l=${local}`;

// Skipped only on a developer machine without Redis on 127.0.0.1:6379; under CI=true devRedisAvailable throws (.ci/run starts one).
describe.skipIf(!available)('key discovery cached on the shared Redis (RedisCache)', () => {
  const ca = createTestCa('Postern Shared Cache Test CA');
  const prefix = testPrefix();
  const dir = mkdtempSync(join(tmpdir(), 'postern-redis-cache-'));
  const stops: (() => Promise<unknown> | void)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
    await deleteKeys(DEV_REDIS_URL, prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('what one instance learnt by WKD (a key, or that there is none) another uses without asking again', async () => {
    const https = await new TestHttps(ca.issue(['openpgpkey.dest.test'])).start();
    const dns = await new TestDns({ 'openpgpkey.dest.test': { A: ['127.0.0.1'] } }).start();
    stops.push(() => https.stop(), () => dns.stop());
    const { publicKey } = (await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: FOUND }], format: 'armored' } as Parameters<typeof generateKey>[0])) as unknown as { publicKey: string };
    https.routes.set(wkdPath('pat'), { body: Buffer.from((await readKey({ armoredKey: publicKey })).write()) });
    const keys = validateConfig({ hostname: 'postern.test', keys: { discovery: ['store', 'wkd'], wkd: { port: https.port, timeout: 2000 } } }).keys;

    /** One instance's lookup: its own key store, Redis connection and cache object; only the Redis is shared. */
    const instance = async (name: string) => {
      const store = new KeyStore(join(dir, name));
      await store.open();
      const redis = new Redis(DEV_REDIS_URL);
      stops.push(() => redis.disconnect());
      const resolver = new DeliveryDns([dns.server], 1000);
      return new KeyLookup({ keys, store, resolve: (h) => resolver.addresses(h), httpsTrust: [ca.cert], log: createLogger('silent'), cache: new RedisCache(redis, prefix) });
    };
    const a = await instance('a');
    const b = await instance('b');

    const onA = await a.pgp(FOUND);
    expect(onA).toMatchObject({ source: 'wkd', from: 'wkd:advanced' });
    expect(await a.pgp(MISSING)).toBeUndefined();
    const asked = https.requests.length;
    expect(asked).toBeGreaterThanOrEqual(2);

    // B has never asked: both answers come from Redis, the key intact (JSON round trip).
    const onB = await b.pgp(FOUND);
    expect(onB).toEqual(onA);
    expect(await readKey({ armoredKey: onB!.info.armored })).toBeDefined();
    expect(await b.pgp(MISSING)).toBeUndefined();
    expect(https.requests).toHaveLength(asked);
  });
});
