import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { Harvester } from '../../src/keys/harvest.js';
import { inspectSmimeCert } from '../../src/keys/smime-cert.js';
import { SmimeTrust } from '../../src/keys/smime-trust.js';
import { KeyStore } from '../../src/keys/store.js';
import { readCertificate } from '../../src/keys/x509.js';
import { createProtector } from '../../src/protect/protector.js';
import { signEntity } from '../../src/protect/smime.js';
import { buildCert, signerFrom } from './smime-pki.js';

const DAY = 86_400_000;
const ORG = 'Clinique Dést';

function logged() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger('info', { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }) };
}

describe('names beyond ASCII in certificates, as logs and reasons show them', () => {
  const root = buildCert({ name: 'Racine Santé', org: ORG, unit: 'Sécurité ✓', ca: true });
  const issuing = buildCert({ name: 'Issuing CA', org: ORG, ca: true, issuer: root });

  it('UTF8String and BMPString attributes read as their text, as OpenSSL reads them', () => {
    const cert = readCertificate(issuing.cert);
    expect(cert.subject).toBe(`CN=Issuing CA, O=${ORG}`);
    expect(cert.issuer).toBe(`CN=Racine Santé, O=${ORG}, OU=Sécurité ✓`);
    // Node's X509Certificate prints the Name through OpenSSL: the same text, one attribute a line.
    expect(cert.issuer).toBe(cert.x509.issuer.split('\n').join(', '));
  });

  it('in a refusal reason (keys.skipped, keys import)', () => {
    const sha1 = buildCert({ name: 'Ancienne CA', org: ORG, ca: true, issuer: root, hash: 'sha1' });
    const leaf = buildCert({ name: 'p@dest.test', email: 'p@dest.test', issuer: sha1 });
    expect(inspectSmimeCert(leaf.cert + sha1.cert, SmimeTrust.fromPem([root.cert])).unusable).toBe(
      `intermediate "CN=Ancienne CA, O=${ORG}" is signed with SHA-1 (sha1WithRSAEncryption): refused (collisions can forge such signatures)`,
    );
  });

  it('in keys.harvested', async () => {
    const leaf = buildCert({ name: 'a@b.test', org: ORG, email: 'a@b.test', issuer: issuing });
    const store = new KeyStore(join(mkdtempSync(join(tmpdir(), 'postern-names-')), 'keys'));
    await store.open();
    const { lines, log } = logged();
    const signed = Buffer.concat([Buffer.from('From: a@b.test\r\nMIME-Version: 1.0\r\n'), signEntity(Buffer.from('Content-Type: text/plain\r\n\r\nhi\r\n'), signerFrom(leaf, [issuing.cert]))]);
    await new Harvester(store, SmimeTrust.fromPem([root.cert]), log).harvest(signed, 'a@b.test', 'q1');
    expect(lines.find((l) => l.event === 'keys.harvested')).toMatchObject({ subject: `CN=a@b.test, O=${ORG}` });
  });

  it('in keys.expiring, for an intermediate of the signing identity', async () => {
    const leaf = buildCert({ name: 'dr@client.test', email: 'dr@client.test', issuer: issuing });
    const { lines, log } = logged();
    const protector = await createProtector(validateConfig({ hostname: 'postern.test', identities: { 'client.test': { smimeCert: leaf.cert + issuing.cert, smimeKey: leaf.key } } }), log);
    protector.expiryWatch!.check(Date.now() + 40 * DAY);
    expect(lines.filter((l) => l.event === 'keys.expiring').map((l) => l.setting)).toEqual(['identities.client.test.smimeCert', `identities.client.test.smimeCert (intermediate CN=Issuing CA, O=${ORG})`]);
  });
});
