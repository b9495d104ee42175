import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { generateKey, readKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servedAs } from '../../src/keys/record.js';
import { RedisKeyStore } from '../../src/keys/redis-store.js';
import { FileKeyStore, type KeyRecord, type KeyStore } from '../../src/keys/store.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, testPrefix } from '../queue/redis-harness.js';

/**
 * One conformance suite for every key store backend (fs and Redis): a put of a key that is
 * stored already merges with its record. A put used to replace the record, so storing the
 * key for a second address (import, discovery under another user ID, a harvest) took it
 * away from the first, whose mail then went out by the policy's next method.
 */
const DAY = 86_400_000;
const redisUp = await devRedisAvailable();

/** Two instances' handles on one store: two FileKeyStores on one directory, or two Redis clients. */
interface Backend {
  name: string;
  pair(): Promise<[KeyStore, KeyStore]>;
  cleanup(): Promise<void>;
}

const fileBackend: Backend = {
  name: 'file store',
  async pair() {
    const dir = join(mkdtempSync(join(tmpdir(), 'postern-keys-merge-')), 'keys');
    const stores: [KeyStore, KeyStore] = [new FileKeyStore(dir), new FileKeyStore(dir)];
    for (const s of stores) await s.open();
    return stores;
  },
  async cleanup() {},
};

/** Each pair under a prefix of its own on the shared Redis, deleted afterwards (never FLUSHDB). */
function redisBackend(): Backend {
  const prefixes: string[] = [];
  const opened: KeyStore[] = [];
  return {
    name: 'Redis store',
    async pair() {
      const prefix = testPrefix();
      prefixes.push(prefix);
      const stores: [KeyStore, KeyStore] = [new RedisKeyStore(new Redis(DEV_REDIS_URL), prefix, true), new RedisKeyStore(new Redis(DEV_REDIS_URL), prefix, true)];
      opened.push(...stores);
      return stores;
    },
    async cleanup() {
      for (const s of opened.splice(0)) await s.close();
      for (const prefix of prefixes.splice(0)) await deleteKeys(DEV_REDIS_URL, prefix);
    },
  };
}

const backends = [fileBackend, ...(redisUp ? [redisBackend()] : [])];

describe.each(backends)('$name: a put merges with the record of the same key', (backend) => {
  let armored: string;
  let id: string;
  const record = (over: Partial<KeyRecord>): KeyRecord => ({ id, kind: 'pgp', addresses: [], source: 'import', addedAt: Date.now(), material: armored, ...over });

  beforeAll(async () => {
    // One key, two user IDs: a person with two addresses, a shared mailbox's key.
    const key = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'alice@clinic.test' }, { email: 'front-desk@clinic.test' }], format: 'armored' });
    armored = key.publicKey;
    id = `pgp:${(await readKey({ armoredKey: armored })).getFingerprint().toUpperCase()}`;
  });
  afterAll(() => backend.cleanup());

  it('storing the key for a second address keeps the first', async () => {
    const [store] = await backend.pair();
    await store.put(record({ addresses: ['alice@clinic.test'] }));
    await store.put(record({ addresses: ['front-desk@clinic.test'] }));
    expect((await store.all()).map((r) => r.addresses)).toEqual([['alice@clinic.test', 'front-desk@clinic.test']]);
    expect((await store.forAddress('pgp', 'alice@clinic.test')).map((r) => r.id)).toEqual([id]);
    expect((await store.forAddress('pgp', 'front-desk@clinic.test')).map((r) => r.id)).toEqual([id]);
  });

  it('each address keeps its own source and date; a discovery never turns an imported address into a cache entry', async () => {
    const [store] = await backend.pair();
    const t0 = Date.now() - 10 * DAY;
    await store.put(record({ addresses: ['alice@clinic.test'], source: 'import', addedAt: t0 }));
    await store.put(record({ addresses: ['alice@clinic.test', 'front-desk@clinic.test'], source: 'wkd', from: 'wkd:advanced', addedAt: t0 + DAY }));
    const [stored] = await store.all();
    expect(servedAs(stored!, 'alice@clinic.test')).toEqual({ source: 'import', addedAt: t0 });
    expect(servedAs(stored!, 'front-desk@clinic.test')).toEqual({ source: 'wkd', from: 'wkd:advanced', addedAt: t0 + DAY });
    // Listings describe the record by its strongest source.
    expect(stored).toMatchObject({ source: 'import', addedAt: t0 });
    // An import does replace a discovered address: it is the admin's word.
    await store.put(record({ addresses: ['front-desk@clinic.test'], source: 'import', addedAt: t0 + 2 * DAY }));
    expect(servedAs((await store.all())[0]!, 'front-desk@clinic.test')).toEqual({ source: 'import', addedAt: t0 + 2 * DAY });
  });

  it('two instances storing the key for different addresses at once lose neither', async () => {
    const [a, b] = await backend.pair();
    const addresses = Array.from({ length: 8 }, (_, i) => `user${i}@clinic.test`);
    await Promise.all(addresses.map((address, i) => (i % 2 ? a : b).put(record({ addresses: [address], source: 'harvest' }))));
    expect([...(await a.all())[0]!.addresses].sort()).toEqual(addresses);
    expect([...(await b.all())[0]!.addresses].sort()).toEqual(addresses);
  });
});
