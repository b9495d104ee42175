import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, readKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { DeliveryDns } from '../../src/deliver/dns.js';
import { createLogger } from '../../src/events/logger.js';
import { Harvester } from '../../src/keys/harvest.js';
import { importKeys } from '../../src/keys/import.js';
import { KeyLookup } from '../../src/keys/lookup.js';
import { SmimeTrust } from '../../src/keys/smime-trust.js';
import { KeyStore, type KeyRecord } from '../../src/keys/store.js';
import { wkdHash } from '../../src/keys/wkd.js';
import { signEntity } from '../../src/protect/smime.js';
import { TestDns } from '../helpers/dns-server.js';
import { TestHttps } from '../helpers/https-server.js';
import { createTestCa } from '../helpers/pki.js';
import { signerFrom } from './smime-pki.js';

const ASCII = 'pat@xn--bcher-kva.example';
const UNICODE = 'pat@bücher.example';

const newKey = (email: string) => generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email }], format: 'armored' }) as unknown as Promise<{ publicKey: string }>;
const fingerprint = async (armored: string) => (await readKey({ armoredKey: armored })).getFingerprint().toUpperCase();

async function freshStore(dir = join(mkdtempSync(join(tmpdir(), 'postern-idn-')), 'keys')): Promise<KeyStore> {
  const store = new KeyStore(dir);
  await store.open();
  return store;
}

function storeOnly(store: KeyStore, smimeTrust?: SmimeTrust): KeyLookup {
  const keys = validateConfig({ hostname: 'postern.test', keys: { discovery: ['store'] } }).keys;
  return new KeyLookup({ keys, store, resolve: async () => [], httpsTrust: [], smimeTrust, log: createLogger('silent') });
}

/**
 * The key store compares addresses in one form — local part lower-cased, domain in ASCII
 * (A-labels) — whether they come from a recipient (smtp-server gives U-labels), an admin's
 * --address, a key's user ID or a certificate: bücher.example and xn--bcher-kva.example
 * are one domain.
 */
describe('key store addresses at IDN domains', () => {
  it('import: a key naming the A-label form is stored for that form, and --address may be written in Unicode', async () => {
    const store = await freshStore();
    const { publicKey } = await newKey(ASCII);
    expect((await importKeys(store, publicKey, {})).map((r) => [r.addresses, r.refused])).toEqual([[[ASCII], undefined]]);
    const { publicKey: other } = await newKey(UNICODE);
    expect((await importKeys(store, other, { address: 'PAT@Bücher.example' })).map((r) => [r.addresses, r.refused])).toEqual([[[ASCII], undefined]]);
    expect((await importKeys(store, other, { domain: 'bücher.example' })).map((r) => r.addresses)).toEqual([['@xn--bcher-kva.example']]);
  });

  it('OpenPGP: either spelling of the recipient finds a key naming either spelling', async () => {
    const store = await freshStore();
    const { publicKey } = await newKey(UNICODE);
    await importKeys(store, publicKey, {});
    const lookup = storeOnly(store);
    for (const rcpt of [ASCII, UNICODE, 'Pat@BÜCHER.example']) expect((await lookup.pgp(rcpt))?.info.fingerprint, rcpt).toBe(await fingerprint(publicKey));
  });

  it('a record stored before addresses were compared this way (a Unicode domain) is still found, and a put merges into one address', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'postern-idn-')), 'keys');
    const store = await freshStore(dir);
    const { publicKey } = await newKey(UNICODE);
    const id = `pgp:${await fingerprint(publicKey)}`;
    // As the file store names a record's file (store.ts).
    const old: KeyRecord = { id, kind: 'pgp', addresses: [UNICODE], source: 'import', addedAt: Date.now() - 1000, material: publicKey };
    writeFileSync(join(dir, `${createHash('sha256').update(id).digest('hex').slice(0, 32)}.json`), JSON.stringify(old));
    expect((await storeOnly(store).pgp(ASCII))?.source).toBe('import');
    await importKeys(store, publicKey, {});
    expect((await store.all()).map((r) => r.addresses)).toEqual([[ASCII]]);
  });

  it('S/MIME: a certificate naming the A-label form serves the Unicode spelling of the address', async () => {
    const ca = createTestCa('IDN S/MIME CA');
    const trust = SmimeTrust.fromPem([ca.cert]);
    const store = await freshStore();
    const leaf = ca.issueSmime(ASCII);
    expect((await importKeys(store, leaf.cert, { address: UNICODE, smimeTrust: trust })).map((r) => [r.addresses, r.refused])).toEqual([[[ASCII], undefined]]);
    expect(await storeOnly(store, trust).smime(UNICODE)).toMatchObject({ source: 'import' });
  });

  it('harvest: a certificate naming the A-label form is harvested for a sender written in Unicode', async () => {
    const ca = createTestCa('IDN harvest CA');
    const store = await freshStore();
    const signed = Buffer.concat([Buffer.from(`From: ${UNICODE}\r\nMIME-Version: 1.0\r\n`), signEntity(Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n'), signerFrom(ca.issueSmime(ASCII), []))]);
    await new Harvester(store, SmimeTrust.fromPem([ca.cert]), createLogger('silent')).harvest(signed, UNICODE, 'q1');
    expect((await store.all()).map((r) => [r.kind, r.addresses, r.source])).toEqual([['smime', [ASCII], 'harvest']]);
  });
});

describe('WKD for an address at an IDN domain', () => {
  const ca = createTestCa('IDN WKD CA');
  let https: TestHttps;
  let dns: TestDns;

  beforeAll(async () => {
    https = await new TestHttps(ca.issue(['openpgpkey.xn--bcher-kva.example', 'xn--bcher-kva.example'])).start();
    dns = await new TestDns({ 'openpgpkey.xn--bcher-kva.example': { A: ['127.0.0.1'] }, 'xn--bcher-kva.example': { A: ['127.0.0.1'] } }).start();
  });
  afterAll(async () => {
    await https.stop();
    await dns.stop();
  });

  it('asks the A-label host with the local part as written, and takes a key whose user ID spells the domain in Unicode', async () => {
    const { publicKey } = await newKey(UNICODE);
    const hu = `${wkdHash('pat')}?l=Pat`;
    https.routes.set(`/.well-known/openpgpkey/xn--bcher-kva.example/hu/${hu}`, { body: Buffer.from((await readKey({ armoredKey: publicKey })).write()) });
    const store = await freshStore();
    const resolver = new DeliveryDns([dns.server], 1000);
    const keys = validateConfig({ hostname: 'postern.test', keys: { discovery: ['store', 'wkd'], wkd: { port: https.port, timeout: 2000 } } }).keys;
    const lookup = new KeyLookup({ keys, store, resolve: (h) => resolver.addresses(h), httpsTrust: [ca.cert], log: createLogger('silent') });
    expect(await lookup.pgp('Pat@bücher.example')).toMatchObject({ source: 'wkd', from: 'wkd:advanced' });
    expect(https.requests).toEqual([`openpgpkey.xn--bcher-kva.example:${https.port}/.well-known/openpgpkey/xn--bcher-kva.example/hu/${hu}`]);
    // Stored for the address in its comparable form: the other spelling uses it, with no request.
    expect((await store.all()).map((r) => r.addresses)).toEqual([[ASCII]]);
    expect(await lookup.pgp(ASCII)).toMatchObject({ source: 'wkd' });
    expect(https.requests).toHaveLength(1);
  });
});
