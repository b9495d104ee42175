import { generateKey, readKey } from 'openpgp';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { InspectedKeys } from '../../src/keys/inspected.js';
import { KeyLookup } from '../../src/keys/lookup.js';
import { inspectPgpKey } from '../../src/keys/pgp-key.js';
import type { KeyRecord, KeyStore } from '../../src/keys/store.js';
import { wkdHash } from '../../src/keys/wkd.js';
import { TestHttps } from '../helpers/https-server.js';
import { createTestCa } from '../helpers/pki.js';

/**
 * A key whose primary key never expires but whose encryption subkey does stops being
 * usable when the subkey expires. What was decided about it before (the discovery cache,
 * the inspection kept per stored record) must not outlast that: its expiry was taken from
 * the primary key only, so the key kept being returned, and encrypting to it failed.
 */
const ADDRESS = 'carol@clinic.test';
const MINUTE = 60_000;

/** A key made at `created` (ms) whose encryption subkey expires `subkeySeconds` later. */
const keyWithSubkeyExpiring = async (created: number, subkeySeconds: number) =>
  (await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: ADDRESS }], date: new Date(created), subkeys: [{ keyExpirationTime: subkeySeconds }], format: 'armored' })).publicKey;

describe('an encryption subkey that expires before its primary key', () => {
  const created = Date.UTC(2026, 0, 5, 9, 0, 0);

  it('expiresAt is the subkey\'s expiry', async () => {
    const armored = await keyWithSubkeyExpiring(created, 3600);
    const info = await inspectPgpKey(armored, new Date(created + MINUTE));
    expect(info.unusable).toBeUndefined();
    expect(info.expiresAt).toBe(created + 3600_000);
  });

  it('a stored key\'s inspection is not reused past the subkey\'s expiry', async () => {
    const armored = await keyWithSubkeyExpiring(created, 120);
    const record: KeyRecord = { id: 'pgp:X', kind: 'pgp', addresses: [ADDRESS], source: 'import', addedAt: created, material: armored };
    const inspected = new InspectedKeys(undefined);
    expect((await inspected.pgp(record, created + MINUTE)).unusable).toBeUndefined();
    // Two minutes later: well within the few minutes an inspection is reused, past the subkey's expiry.
    expect(await inspected.pgp(record, created + 3 * MINUTE)).toMatchObject({ unusable: expect.stringMatching(/^no usable encryption key/) });
  });

  describe('the discovery cache', () => {
    const ca = createTestCa('Subkey Expiry WKD CA');
    let https: TestHttps;
    beforeAll(async () => {
      https = await new TestHttps(ca.issue(['openpgpkey.clinic.test'])).start();
    });
    afterAll(() => https.stop());
    afterEach(() => {
      vi.useRealTimers();
    });

    it('does not return a key found before its subkey expired', async () => {
      // Only Date is moved (what the cache, openpgp and the lookup read); timers and TLS run as usual.
      const start = Date.now();
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(start);
      const armored = await keyWithSubkeyExpiring(start, 3600);
      https.routes.set(`/.well-known/openpgpkey/clinic.test/hu/${wkdHash('carol')}?l=carol`, { body: Buffer.from((await readKey({ armoredKey: armored })).write()) });
      const keys = validateConfig({ hostname: 'postern.test', keys: { discovery: ['wkd'], cacheTtl: '1d', wkd: { port: https.port, timeout: 2000 } } }).keys;
      const lookup = new KeyLookup({ keys, store: noStore, resolve: async () => ['127.0.0.1'], httpsTrust: [ca.cert], log: createLogger('silent') });

      expect(await lookup.pgp(ADDRESS)).toMatchObject({ source: 'wkd' });
      vi.setSystemTime(start + 2 * 3600_000);
      expect(await lookup.pgp(ADDRESS)).toBeUndefined();
    });
  });
});

/** The discovery cache alone is under test: nothing is stored. */
const noStore: KeyStore = {
  open: async () => undefined,
  close: async () => undefined,
  put: async () => undefined,
  all: async () => [],
  forAddress: async () => [],
  remove: async () => false,
};
