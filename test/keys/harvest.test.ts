import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/events/logger.js';
import { Harvester, isSmimeSigned } from '../../src/keys/harvest.js';
import { KeyStore } from '../../src/keys/store.js';
import { signEntity } from '../../src/protect/smime.js';
import { SmimeTrust } from '../../src/keys/smime-trust.js';
import { createTestCa } from '../helpers/pki.js';
import { signerFrom, threeTier } from './smime-pki.js';
import { pemCertificates } from '../../src/keys/material.js';

const entity = Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n');
const signedBy = (signer: { cert: string; key: string }, chain: string[] = []) => Buffer.concat([Buffer.from('From: a@b.test\r\nMIME-Version: 1.0\r\n'), signEntity(entity, signerFrom(signer, chain))]);

describe('certificate harvesting', () => {
  it('stores a trusted, current certificate that names the sender; nothing else', async () => {
    const ca = createTestCa('Harvest CA');
    const store = new KeyStore(join(mkdtempSync(join(tmpdir(), 'postern-harvest-')), 'keys'));
    await store.open();
    const harvester = new Harvester(store, SmimeTrust.fromPem([ca.cert]), createLogger('silent'));
    const signed = signedBy(ca.issueSmime('a@b.test'));
    expect(isSmimeSigned(signed.subarray(0, signed.indexOf('\r\n\r\n')).toString('latin1'))).toBe(true);
    expect(isSmimeSigned('Content-Type: multipart/mixed; boundary=x')).toBe(false);

    await harvester.harvest(signedBy(ca.issueSmime('someone-else@b.test')), 'a@b.test', 'q1');
    await harvester.harvest(signedBy(createTestCa('Stranger CA').issueSmime('a@b.test')), 'a@b.test', 'q2');
    await harvester.harvest(signedBy(ca.issueSmime('a@b.test', { expired: true })), 'a@b.test', 'q3');
    expect(await store.all()).toEqual([]);
    await harvester.harvest(signed, 'a@b.test', 'q4');
    expect((await store.all()).map((r) => [r.kind, r.addresses, r.source])).toEqual([['smime', ['a@b.test'], 'harvest']]);
  });

  it('a certificate issued by an intermediate is harvested with the intermediate the signature carries (an EC one too)', async () => {
    const { root, intermediate, leaf } = threeTier('a@b.test', { intermediateKey: 'ec' });
    const store = new KeyStore(join(mkdtempSync(join(tmpdir(), 'postern-harvest-')), 'keys'));
    await store.open();
    const harvester = new Harvester(store, SmimeTrust.fromPem([root.cert]), createLogger('silent'));
    await harvester.harvest(signedBy(leaf), 'a@b.test', 'q1');
    expect(await store.all()).toEqual([]);
    await harvester.harvest(signedBy(leaf, [intermediate.cert]), 'a@b.test', 'q2');
    const [record] = await store.all();
    expect(record).toMatchObject({ kind: 'smime', source: 'harvest' });
    expect(pemCertificates(record!.material)).toHaveLength(2);
  });
});
