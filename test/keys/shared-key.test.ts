import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, readKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { Harvester } from '../../src/keys/harvest.js';
import { importKeys } from '../../src/keys/import.js';
import { KeyLookup } from '../../src/keys/lookup.js';
import { SmimeTrust } from '../../src/keys/smime-trust.js';
import { FileKeyStore } from '../../src/keys/store.js';
import { wkdHash } from '../../src/keys/wkd.js';
import { signEntity } from '../../src/protect/smime.js';
import { TestHttps } from '../helpers/https-server.js';
import { createTestCa } from '../helpers/pki.js';
import { signerFrom } from './smime-pki.js';
import { issueForAddresses } from './two-address-cert.js';

/**
 * One key (or certificate) serving several recipients, stored for each in turn by import,
 * discovery or harvest: every recipient keeps it. The store used to keep only the last
 * put's addresses, so the earlier recipient's mail silently took the policy's next method.
 */
const ALICE = 'alice@clinic.test';
const DESK = 'front-desk@clinic.test';
const DAY = 86_400_000;

/** Why each key of an import was refused: undefined when it was stored. */
const refusals = (results: { refused?: string | undefined }[]) => results.map((r) => r.refused);

const newStore = async () => {
  const store = new FileKeyStore(join(mkdtempSync(join(tmpdir(), 'postern-shared-key-')), 'keys'));
  await store.open();
  return store;
};

describe('a key shared by several addresses', () => {
  const ca = createTestCa('Shared Key WKD CA');
  let https: TestHttps;
  let key: { publicKey: string };

  beforeAll(async () => {
    key = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: ALICE }, { email: DESK }], format: 'armored' });
    https = await new TestHttps(ca.issue(['openpgpkey.clinic.test'])).start();
  });
  afterAll(() => https.stop());

  const lookupOn = (store: FileKeyStore, keys: Record<string, unknown> = {}) => {
    const config = validateConfig({ hostname: 'postern.test', keys: { discovery: ['store'], wkd: { port: https.port, timeout: 2000 }, ...keys } });
    return new KeyLookup({ keys: config.keys, store, resolve: async () => ['127.0.0.1'], httpsTrust: [ca.cert], log: createLogger('silent') });
  };

  it('imported for one address, then for the other: both are served', async () => {
    const store = await newStore();
    expect(refusals(await importKeys(store, key.publicKey, { address: ALICE }))).toEqual([undefined]);
    expect(refusals(await importKeys(store, key.publicKey, { address: DESK }))).toEqual([undefined]);
    const lookup = lookupOn(store);
    expect(await lookup.pgp(ALICE)).toMatchObject({ source: 'import' });
    expect(await lookup.pgp(DESK)).toMatchObject({ source: 'import' });
  });

  it('discovered by WKD under its other user ID: the imported address keeps it, and WKD\'s one-user-ID copy hides nothing', async () => {
    const store = await newStore();
    await importKeys(store, key.publicKey, { address: ALICE });
    // WKD servers publish a key with only the user ID asked for (gpg-wks-server does).
    const published = await readKey({ armoredKey: key.publicKey });
    published.users = published.users.filter((u) => u.userID?.email === DESK);
    https.routes.set(`/.well-known/openpgpkey/clinic.test/hu/${wkdHash('front-desk')}?l=front-desk`, { body: Buffer.from(published.write()) });

    expect(await lookupOn(store, { discovery: ['store', 'wkd'] }).pgp(DESK)).toMatchObject({ source: 'wkd', from: 'wkd:advanced' });
    // What every instance reads from the store afterwards:
    const stored = lookupOn(store);
    expect(await stored.pgp(ALICE)).toMatchObject({ source: 'import' });
    expect(await stored.pgp(DESK)).toMatchObject({ source: 'wkd', from: 'wkd:advanced' });
  });

  it('keys.cacheTtl ages out only the address the key was discovered for, never the imported one', async () => {
    const store = await newStore();
    const id = `pgp:${(await readKey({ armoredKey: key.publicKey })).getFingerprint().toUpperCase()}`;
    const longAgo = Date.now() - 10 * DAY;
    await store.put({ id, kind: 'pgp', addresses: [ALICE], source: 'import', addedAt: longAgo, material: key.publicKey });
    await store.put({ id, kind: 'pgp', addresses: [DESK], source: 'wkd', from: 'wkd:advanced', addedAt: longAgo, material: key.publicKey });
    const lookup = lookupOn(store, { cacheTtl: '1d' });
    expect(await lookup.pgp(ALICE)).toMatchObject({ source: 'import' });
    expect(await lookup.pgp(DESK)).toBeUndefined();
  });

  it('an S/MIME certificate imported for one address and harvested for the other serves both', async () => {
    const smimeCa = createTestCa('Shared Key S/MIME CA');
    const trust = SmimeTrust.fromPem([smimeCa.cert]);
    const both = issueForAddresses(smimeCa, ['alice@partner.test', 'a.smith@partner.test']);
    const store = await newStore();
    expect(refusals(await importKeys(store, both.cert, { address: 'alice@partner.test', smimeTrust: trust }))).toEqual([undefined]);
    const signed = Buffer.concat([Buffer.from('From: a.smith@partner.test\r\nMIME-Version: 1.0\r\n'), signEntity(Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n'), signerFrom(both))]);
    await new Harvester(store, trust, createLogger('silent')).harvest(signed, 'a.smith@partner.test', 'Q1');

    const lookup = new KeyLookup({ keys: validateConfig({ hostname: 'postern.test', keys: { discovery: ['store'] } }).keys, store, resolve: async () => [], httpsTrust: [], smimeTrust: trust, log: createLogger('silent') });
    expect(await lookup.smime('alice@partner.test')).toMatchObject({ source: 'import' });
    expect(await lookup.smime('a.smith@partner.test')).toMatchObject({ source: 'harvest' });
  });
});
