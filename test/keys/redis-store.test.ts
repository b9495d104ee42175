import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, readKey } from 'openpgp';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { importKeys } from '../../src/keys/import.js';
import { startKeys, type KeyParts } from '../../src/keys/start.js';
import { runCli as cli } from '../helpers/cli.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, testPrefix } from '../queue/redis-harness.js';

const available = await devRedisAvailable();
const pgpKey = (email: string) => generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email }], format: 'armored' });
const fpr = async (armored: string) => (await readKey({ armoredKey: armored })).getFingerprint().toUpperCase();

/** One instance's config: a data directory of its own, the queue (and so the key store) on the shared Redis. */
function instanceInput(prefix: string) {
  return {
    hostname: 'postern.test',
    dataDir: mkdtempSync(join(tmpdir(), 'postern-keys-redis-')),
    queue: { backend: 'redis' },
    redis: { url: DEV_REDIS_URL, keyPrefix: prefix },
    portal: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
    archive: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
    keys: { discovery: ['store'] },
  };
}

// Skipped only on a developer machine without Redis on 127.0.0.1:6379; under CI=true devRedisAvailable throws (.ci/run starts one).
describe.skipIf(!available)('key store on Redis (queue.backend: redis)', () => {
  let prefix = '';
  const opened: KeyParts[] = [];
  afterEach(async () => {
    for (const k of opened.splice(0)) await k.store.close();
    await deleteKeys(DEV_REDIS_URL, prefix);
  });
  const instance = async (input: ReturnType<typeof instanceInput>) => {
    const config = validateConfig(input);
    const parts = await startKeys(config, input.dataDir, async () => [], createLogger('silent'));
    opened.push(parts);
    return parts;
  };

  it('a key imported through one instance is used by another; a removal through the other is seen by the first', async () => {
    prefix = testPrefix();
    const a = await instance(instanceInput(prefix));
    const b = await instance(instanceInput(prefix));
    const pat = await pgpKey('pat@dest.test');
    const id = `pgp:${await fpr(pat.publicKey)}`;
    expect(await b.lookup.pgp('pat@dest.test')).toBeUndefined();
    expect(await importKeys(a.store, pat.publicKey, {})).toMatchObject([{ id, addresses: ['pat@dest.test'] }]);

    expect(await b.lookup.pgp('pat@dest.test')).toMatchObject({ source: 'import', from: id });
    expect((await b.store.all()).map((r) => ({ id: r.id, kind: r.kind, addresses: r.addresses, source: r.source }))).toEqual([{ id, kind: 'pgp', addresses: ['pat@dest.test'], source: 'import' }]);
    // A has read the records already; B's removal still reaches it.
    expect(await a.lookup.pgp('pat@dest.test')).toBeDefined();
    expect(await b.store.remove(await fpr(pat.publicKey))).toBe(true);
    expect(await a.lookup.pgp('pat@dest.test')).toBeUndefined();
    expect(await a.store.remove(id)).toBe(false);
  });

  it('postern keys import, list and remove use the shared store, and exit when done', async () => {
    prefix = testPrefix();
    const dir = mkdtempSync(join(tmpdir(), 'postern-keys-redis-cli-'));
    const yaml = (name: string) => {
      const file = join(dir, `${name}.json`);
      // JSON is YAML: the same input the other test validates.
      writeFileSync(file, JSON.stringify(instanceInput(prefix)));
      return file;
    };
    const [configA, configB] = [yaml('a'), yaml('b')];
    const pat = await pgpKey('pat@dest.test');
    const file = join(dir, 'pat.asc');
    writeFileSync(file, pat.publicKey);
    const imported = await cli(['keys', 'import', file, '-c', configA]);
    expect(imported.stderr).toBe('');
    expect(imported.code).toBe(0);

    const listed = await cli(['keys', 'list', '--json', '-c', configB]);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { id: string; addresses: string[] }[]).map((r) => [r.id, r.addresses])).toEqual([[`pgp:${await fpr(pat.publicKey)}`, ['pat@dest.test']]]);
    // And the gateway's lookup of another instance finds it too.
    const c = await instance(instanceInput(prefix));
    expect(await c.lookup.pgp('pat@dest.test')).toMatchObject({ source: 'import' });

    expect((await cli(['keys', 'remove', await fpr(pat.publicKey), '-c', configB])).code).toBe(0);
    expect((await cli(['keys', 'list', '-c', configA])).stdout).toBe('no keys stored\n');
  }, 60_000);
});
