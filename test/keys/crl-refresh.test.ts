import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { CrlSet } from '../../src/keys/crl.js';
import { importKeys } from '../../src/keys/import.js';
import { KeyLookup } from '../../src/keys/lookup.js';
import { SmimeTrust } from '../../src/keys/smime-trust.js';
import { FileKeyStore } from '../../src/keys/store.js';
import { readCertificate } from '../../src/keys/x509.js';
import { createTestCa } from '../helpers/pki.js';
import { makeCrl } from './crl-fixture.js';

/**
 * A CRL file refreshed by cron must stop a revoked certificate within the minute the
 * files are checked in — also when the lookup answers from what it decided before. The
 * kept decision was compared with a CRL generation that only moved when a full inspection
 * ran, so for up to five minutes the revoked certificate was still used.
 */
describe('a CRL refreshed on disk', () => {
  it('stops a certificate the lookup had already checked, once the minute is up', async () => {
    const ca = createTestCa('CRL Refresh CA');
    const leaf = ca.issueSmime('alice@partner.test');
    const file = join(mkdtempSync(join(tmpdir(), 'postern-crl-refresh-')), 'ca.crl');
    writeFileSync(file, makeCrl(ca, []));
    // The clock is moved by hand: no waiting for the minute.
    const start = Date.now();
    let now = start;
    const base = SmimeTrust.fromPem([ca.cert]);
    const crls = new CrlSet([file], base.issuers, undefined, () => now);
    const trust = base.withRevocation(crls.check, () => crls.generation);
    const store = new FileKeyStore(join(mkdtempSync(join(tmpdir(), 'postern-crl-refresh-')), 'keys'));
    await store.open();
    await importKeys(store, leaf.cert, { address: 'alice@partner.test', smimeTrust: trust });
    const keys = validateConfig({ hostname: 'postern.test', keys: { discovery: ['store'] } }).keys;
    const lookup = new KeyLookup({ keys, store, resolve: async () => [], httpsTrust: [], smimeTrust: trust, log: createLogger('silent') });
    expect(await lookup.smime('alice@partner.test', new Date(now))).toMatchObject({ source: 'import' });

    // The CA revokes it; cron replaces the file (its own modification time, so it is seen as changed).
    writeFileSync(file, makeCrl(ca, [readCertificate(leaf.cert).serial]));
    utimesSync(file, new Date(start + 10_000), new Date(start + 10_000));
    now = start + 61_000;
    expect(await lookup.smime('alice@partner.test', new Date(now))).toBeUndefined();
  });
});
