import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { generateKey, readKey, readPrivateKey, revokeKey } from 'openpgp';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { DeliveryDns } from '../../src/deliver/dns.js';
import { createLogger } from '../../src/events/logger.js';
import { importKeys } from '../../src/keys/import.js';
import { KeyLookup } from '../../src/keys/lookup.js';
import { KeyStore } from '../../src/keys/store.js';
import { wkdHash } from '../../src/keys/wkd.js';
import { TestDns } from '../helpers/dns-server.js';
import { TestHttps } from '../helpers/https-server.js';
import { createTestCa } from '../helpers/pki.js';
import { until } from '../api/admin-helpers.js';

const ADDRESS = 'Pat.Doe@dest.test';
const HU = `${wkdHash('pat.doe')}?l=Pat.Doe`;
const ADVANCED = `/.well-known/openpgpkey/dest.test/hu/${HU}`;
const DIRECT = `/.well-known/openpgpkey/hu/${HU}`;
const VKS = `/vks/v1/by-email/${encodeURIComponent(ADDRESS.toLowerCase())}`;

/** WKD serves keys in binary. */
const binary = async (armored: string) => Buffer.from((await readKey({ armoredKey: armored })).write());
const newKey = (opts: Partial<Parameters<typeof generateKey>[0]> = {}) =>
  generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: ADDRESS.toLowerCase() }], format: 'armored', ...opts } as Parameters<typeof generateKey>[0]) as unknown as Promise<{ publicKey: string; privateKey: string }>;

describe('OpenPGP key discovery: store → WKD (advanced, direct) → keyserver', () => {
  const ca = createTestCa('Postern WKD Test CA');
  let https: TestHttps;
  let dns: TestDns;
  let logs: Record<string, unknown>[];
  let store: KeyStore;
  let lookup: KeyLookup;
  let makeLookup: (keys?: Record<string, unknown>) => KeyLookup;
  let key: { publicKey: string; privateKey: string };

  beforeAll(async () => {
    key = await newKey();
    https = await new TestHttps(ca.issue(['openpgpkey.dest.test', 'dest.test', 'keys.test'])).start();
    dns = await new TestDns({ 'openpgpkey.dest.test': { A: ['127.0.0.1'] }, 'dest.test': { A: ['127.0.0.1'] }, 'keys.test': { A: ['127.0.0.1'] } }).start();
  });
  afterAll(async () => {
    await https.stop();
    await dns.stop();
  });

  /** A fresh store, cache and log per test; the HTTPS server's answers are set by each test. */
  beforeEach(async () => {
    https.routes.clear();
    https.requests = [];
    logs = [];
    store = new KeyStore(join(mkdtempSync(join(tmpdir(), 'postern-keys-')), 'keys'));
    await store.open();
    const resolver = new DeliveryDns([dns.server], 1000);
    const log = createLogger('info', { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) });
    makeLookup = (keys = {}) => {
      const config = validateConfig({
        hostname: 'postern.test',
        keys: { discovery: ['store', 'wkd', 'keyserver'], wkd: { port: https.port, timeout: 300 }, keyserver: { url: `https://keys.test:${https.port}`, timeout: 300 }, ...keys },
      });
      return new KeyLookup({ keys: config.keys, store, resolve: (h) => resolver.addresses(h), httpsTrust: [ca.cert], log });
    };
    lookup = makeLookup();
  });

  it('hashes the local part as the WKD draft does (its own example)', () => {
    expect(wkdHash('Joe.Doe')).toBe('iy9q119eutrkn8s1mk4r39qejnbu3n5q');
  });

  it('WKD advanced first; the key records where it came from, and is cached', async () => {
    https.routes.set(ADVANCED, { body: await binary(key.publicKey), contentType: 'application/octet-stream' });
    const found = await lookup.pgp(ADDRESS);
    expect(found).toMatchObject({ source: 'wkd', from: 'wkd:advanced' });
    expect(found!.info.fingerprint).toBe((await readKey({ armoredKey: key.publicKey })).getFingerprint().toUpperCase());
    expect(https.requests).toEqual([`openpgpkey.dest.test:${https.port}${ADVANCED}`]);
    expect(await lookup.pgp(ADDRESS)).toMatchObject({ source: 'wkd', from: 'wkd:advanced' });
    expect(https.requests).toHaveLength(1);
    expect(logs.filter((l) => l.event === 'keys.found')).toEqual([expect.objectContaining({ address: 'pat.doe@dest.test', source: 'wkd', from: 'wkd:advanced' })]);
    // Kept in the store with where it came from: another lookup (another instance) uses it without asking.
    const [record] = await store.all();
    expect(record).toMatchObject({ id: `pgp:${found!.info.fingerprint}`, addresses: ['pat.doe@dest.test'], source: 'wkd', from: 'wkd:advanced' });
    expect(await makeLookup().pgp(ADDRESS)).toMatchObject({ source: 'wkd', from: 'wkd:advanced' });
    expect(https.requests).toHaveLength(1);
    // Past keys.cacheTtl the stored copy is not used: WKD is asked again, and the copy refreshed.
    await store.put({ ...record!, addedAt: Date.now() - 2 * 86_400_000 });
    expect(await makeLookup().pgp(ADDRESS)).toMatchObject({ source: 'wkd' });
    expect(https.requests).toHaveLength(2);
    expect((await store.all())[0]!.addedAt).toBeGreaterThan(Date.now() - 60_000);
  });

  it('a 404 from the advanced method falls through to the direct method', async () => {
    https.routes.set(DIRECT, { body: await binary(key.publicKey) });
    expect(await lookup.pgp(ADDRESS)).toMatchObject({ source: 'wkd', from: 'wkd:direct' });
    expect(https.requests.map((r) => r.split('/')[0])).toEqual([`openpgpkey.dest.test:${https.port}`, `dest.test:${https.port}`]);
    expect(logs.find((l) => l.event === 'keys.source-failed')).toMatchObject({ source: 'wkd', tried: ['advanced: HTTP 404'] });
  });

  it('WKD timing out on both methods falls through to the keyserver (VKS)', async () => {
    https.routes.set(ADVANCED, { body: await binary(key.publicKey), delayMs: 1500 });
    https.routes.set(DIRECT, { body: await binary(key.publicKey), delayMs: 1500 });
    https.routes.set(VKS, { body: key.publicKey });
    expect(await lookup.pgp(ADDRESS)).toMatchObject({ source: 'keyserver', from: `https://keys.test:${https.port}` });
    const failed = logs.find((l) => l.event === 'keys.source-failed' && l.source === 'wkd');
    expect(failed?.tried).toEqual(['advanced: no complete answer from openpgpkey.dest.test in 300 ms', 'direct: no complete answer from dest.test in 300 ms']);
    expect(failed?.failed).toBe(true);
  });

  it('a failed source is remembered for keys.errorTtl only; a genuine miss for keys.negativeTtl', async () => {
    const short = makeLookup({ discovery: ['wkd'], errorTtl: '100ms', negativeTtl: '1h' });
    https.routes.set(ADVANCED, { body: await binary(key.publicKey), delayMs: 1500 });
    https.routes.set(DIRECT, { body: await binary(key.publicKey), delayMs: 1500 });
    expect(await short.pgp(ADDRESS)).toBeUndefined();
    expect(https.requests).toHaveLength(2);
    // Within errorTtl the failure is remembered: no new request.
    expect(await short.pgp(ADDRESS)).toBeUndefined();
    expect(https.requests).toHaveLength(2);
    // The WKD server is back; once errorTtl has passed the key is found (not a miss for an hour).
    https.routes.set(ADVANCED, { body: await binary(key.publicKey) });
    await new Promise((r) => setTimeout(r, 150));
    expect(await short.pgp(ADDRESS)).toMatchObject({ source: 'wkd', from: 'wkd:advanced' });

    // A genuine miss (404 on both methods) is kept for negativeTtl, past errorTtl.
    const other = 'nobody@dest.test';
    const before = https.requests.length;
    expect(await short.pgp(other)).toBeUndefined();
    expect(https.requests.length).toBe(before + 2);
    await new Promise((r) => setTimeout(r, 150));
    expect(await short.pgp(other)).toBeUndefined();
    expect(https.requests.length).toBe(before + 2);
  });

  it('a keyserver answering 503 is a failure (errorTtl), not a miss', async () => {
    const short = makeLookup({ discovery: ['keyserver'], errorTtl: '100ms', negativeTtl: '1h' });
    https.routes.set(VKS, { status: 503, body: 'down for maintenance' });
    expect(await short.pgp(ADDRESS)).toBeUndefined();
    https.routes.set(VKS, { body: key.publicKey });
    await new Promise((r) => setTimeout(r, 150));
    expect(await short.pgp(ADDRESS)).toMatchObject({ source: 'keyserver' });
  });

  it('the timeout is a deadline: a server that trickles its answer byte by byte is given up on, and its connection closed', async () => {
    const trickle = { ended: false, closed: false };
    const slow = createServer(ca.issue(['openpgpkey.dest.test', 'dest.test']), (req, res) => {
      if (!req.url?.startsWith('/.well-known/openpgpkey/dest.test/')) {
        res.statusCode = 404;
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // One byte every 50 ms for 4 s: an idle timeout of 300 ms never fires.
      let left = 80;
      const tick = setInterval(() => {
        if (--left > 0) return void res.write('x');
        clearInterval(tick);
        trickle.ended = true;
        res.end('x');
      }, 50);
      res.on('close', () => {
        clearInterval(tick);
        trickle.closed = true;
      });
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (slow.address() as { port: number }).port;
      const wkdOnly = makeLookup({ discovery: ['wkd'], wkd: { port, timeout: 300 } });
      expect(await wkdOnly.pgp(ADDRESS)).toBeUndefined();
      expect(trickle.ended).toBe(false);
      const failed = logs.find((l) => l.event === 'keys.source-failed' && l.source === 'wkd');
      expect(failed?.tried).toEqual(['advanced: no complete answer from openpgpkey.dest.test in 300 ms', 'direct: HTTP 404']);
      expect(failed?.failed).toBe(true);
      await until(() => trickle.closed, 2000, 'the trickling response closed by the client');
      expect(trickle.ended).toBe(false);
    } finally {
      slow.closeAllConnections();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });

  it('WKD: a same-origin redirect is followed; one to another origin is a failure (errorTtl), not a miss (negativeTtl)', async () => {
    https.routes.set(ADVANCED, { status: 302, location: '/keys/pat-doe' });
    https.routes.set('/keys/pat-doe', { body: await binary(key.publicKey) });
    expect(await lookup.pgp(ADDRESS)).toMatchObject({ source: 'wkd', from: 'wkd:advanced' });
    expect(https.requests.map((r) => r.replace(/:\d+/, ''))).toEqual([`openpgpkey.dest.test${ADVANCED}`, 'openpgpkey.dest.test/keys/pat-doe']);

    const short = makeLookup({ discovery: ['wkd'], errorTtl: '100ms', negativeTtl: '1h' });
    const other = 'other@dest.test';
    const hu = `${wkdHash('other')}?l=other`;
    https.routes.set(`/.well-known/openpgpkey/dest.test/hu/${hu}`, { status: 301, location: `https://keys.test:${https.port}/elsewhere` });
    https.routes.set(`/.well-known/openpgpkey/hu/${hu}`, { status: 302, location: `/.well-known/openpgpkey/hu/${hu}` });
    expect(await short.pgp(other)).toBeUndefined();
    const failed = logs.filter((l) => l.event === 'keys.source-failed' && l.address === other).at(-1);
    expect(failed?.tried).toEqual([`advanced: openpgpkey.dest.test:${https.port} redirected to https://keys.test:${https.port}: only same-origin redirects are followed`, `direct: dest.test:${https.port} redirected too many times`]);
    expect(failed?.failed).toBe(true);
    const asked = https.requests.length;
    await new Promise((r) => setTimeout(r, 150));
    // Past errorTtl it is asked again (a miss would have been kept for an hour).
    await short.pgp(other);
    expect(https.requests.length).toBeGreaterThan(asked);
  });

  it('every address of the host is tried: one that refuses the connection gives way to the next', async () => {
    const zone = dns.zone['openpgpkey.dest.test'];
    onTestFinished(() => void (dns.zone['openpgpkey.dest.test'] = zone!));
    https.routes.set(ADVANCED, { body: await binary(key.publicKey) });
    dns.zone['openpgpkey.dest.test'] = { A: ['127.0.0.2', '127.0.0.1'] };
    expect(await makeLookup({ discovery: ['wkd'] }).pgp(ADDRESS)).toMatchObject({ source: 'wkd', from: 'wkd:advanced' });
    // None answering is a failure that names each address.
    dns.zone['openpgpkey.dest.test'] = { A: ['127.0.0.2', '127.0.0.3'] };
    expect(await makeLookup({ discovery: ['wkd'] }).pgp('nobody@dest.test')).toBeUndefined();
    const tried = logs.filter((l) => l.event === 'keys.source-failed' && l.address === 'nobody@dest.test').at(-1)?.tried as string[];
    expect(tried[0]).toMatch(/^advanced: no answer from openpgpkey\.dest\.test \(127\.0\.0\.2: .*ECONNREFUSED.*; 127\.0\.0\.3: .*ECONNREFUSED.*\)$/);
    // The certificate is checked against the host name, whatever address answered.
    dns.zone['openpgpkey.wrong.test'] = { A: ['127.0.0.1'] };
    onTestFinished(() => void delete dns.zone['openpgpkey.wrong.test']);
    https.routes.set(`/.well-known/openpgpkey/wrong.test/hu/${HU}`, { body: await binary(key.publicKey) });
    expect(await makeLookup({ discovery: ['wkd'] }).pgp('Pat.Doe@wrong.test')).toBeUndefined();
    const wrong = logs.filter((l) => l.event === 'keys.source-failed' && l.address === 'pat.doe@wrong.test').at(-1)?.tried as string[];
    expect(wrong[0]).toMatch(/^advanced: no answer from openpgpkey\.wrong\.test \(127\.0\.0\.1: ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it('an HKP keyserver is asked the HKP way; the discovery order is the configured one', async () => {
    https.routes.set(`/pks/lookup?op=get&options=mr&exact=on&search=${encodeURIComponent('pat.doe@dest.test')}`, { body: key.publicKey });
    https.routes.set(ADVANCED, { body: await binary(key.publicKey) });
    const hkp = makeLookup({ discovery: ['keyserver', 'wkd'], keyserver: { url: `https://keys.test:${https.port}`, protocol: 'hkp', timeout: 300 } });
    expect(await hkp.pgp(ADDRESS)).toMatchObject({ source: 'keyserver' });
    expect(https.requests).toHaveLength(1);
  });

  it('an expired or revoked key is skipped, with the reason, and the next source is asked', async () => {
    const expired = await newKey({ date: new Date(Date.now() - 3 * 86_400_000), keyExpirationTime: 86_400 });
    const revoked = await revokeKey({ key: await readPrivateKey({ armoredKey: (await newKey()).privateKey }), format: 'armored' });
    https.routes.set(ADVANCED, { body: await binary(expired.publicKey) });
    https.routes.set(DIRECT, { body: await binary(revoked.publicKey) });
    https.routes.set(VKS, { body: key.publicKey });
    expect(await lookup.pgp(ADDRESS)).toMatchObject({ source: 'keyserver' });
    const skipped = logs.filter((l) => l.event === 'keys.skipped').map((l) => [l.source, String(l.reason).replace(/ on .*/, '')]);
    // The advanced method's (expired) key ends the WKD step: one WKD answer per lookup.
    expect(skipped).toEqual([['wkd', 'expired']]);
    // Without an advanced host answer, the direct method's (revoked) key is looked at
    // (the store, which now holds the keyserver's key, is left out).
    https.routes.delete(ADVANCED);
    expect(await makeLookup({ discovery: ['wkd', 'keyserver'] }).pgp(ADDRESS)).toMatchObject({ source: 'keyserver' });
    expect(logs.filter((l) => l.event === 'keys.skipped').map((l) => l.reason)).toContain('revoked');
  });

  it('a key without a user ID for the address is not used; misses are cached', async () => {
    const stranger = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'someone@else.test' }], format: 'armored' });
    https.routes.set(ADVANCED, { body: await binary(stranger.publicKey) });
    expect(await lookup.pgp(ADDRESS)).toBeUndefined();
    expect(logs.find((l) => l.event === 'keys.skipped')).toMatchObject({ reason: 'the key has no user ID for pat.doe@dest.test' });
    // advanced (unusable key), then the keyserver (404)
    expect(https.requests.map((r) => r.replace(/:\d+/, ''))).toEqual([`openpgpkey.dest.test${ADVANCED}`, `keys.test${VKS}`]);
    expect(await lookup.pgp(ADDRESS)).toBeUndefined();
    expect(https.requests).toHaveLength(2);
  });

  it('the store comes first and is never cached: an imported key is used at once, without network', async () => {
    expect(await lookup.pgp(ADDRESS)).toBeUndefined();
    const asked = https.requests.length;
    const [imported] = await importKeys(store, key.publicKey, {});
    expect(imported?.refused).toBeUndefined();
    expect(await lookup.pgp(ADDRESS)).toMatchObject({ source: 'import', from: imported!.id });
    expect(https.requests.length).toBe(asked);
  });
});
