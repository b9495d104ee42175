import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { CrlSet } from '../../src/keys/crl.js';
import { createLogger } from '../../src/events/logger.js';
import { importKeys } from '../../src/keys/import.js';
import { KeyLookup } from '../../src/keys/lookup.js';
import { pemCertificates } from '../../src/keys/material.js';
import { inspectSmimeCert } from '../../src/keys/smime-cert.js';
import { SmimeTrust } from '../../src/keys/smime-trust.js';
import { loadSmimeTrust } from '../../src/keys/start.js';
import { KeyStore } from '../../src/keys/store.js';
import { readCertificate } from '../../src/keys/x509.js';
import { runCli as cli } from '../helpers/cli.js';
import { createTestCa } from '../helpers/pki.js';
import { findProgram } from '../helpers/programs.js';
import { makeCrl } from './crl-fixture.js';
import { buildCert, pemFile, threeTier } from './smime-pki.js';

const openssl = findProgram('openssl');
const EMAIL = 'pat@dest.test';

async function newStore(): Promise<KeyStore> {
  const store = new KeyStore(join(mkdtempSync(join(tmpdir(), 'postern-chains-')), 'keys'));
  await store.open();
  return store;
}

function lookupFor(store: KeyStore, trust: SmimeTrust): KeyLookup {
  const config = validateConfig({ hostname: 'postern.test', keys: { discovery: ['store'] } });
  return new KeyLookup({ keys: config.keys, store, resolve: async () => [], httpsTrust: [], smimeTrust: trust, log: createLogger('silent') });
}

/** What `openssl verify` says of a chain: the independent check of what Postern decides. */
function opensslVerifies(anchors: string[], untrusted: string[], leaf: string): boolean {
  const args = ['verify', '-purpose', 'smimeencrypt', '-CAfile', pemFile('ca.pem', ...anchors), ...(untrusted.length ? ['-untrusted', pemFile('int.pem', ...untrusted)] : []), pemFile('leaf.pem', leaf)];
  try {
    execFileSync(openssl as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    return true;
  } catch {
    return false;
  }
}

describe('S/MIME certificate chains', () => {
  it('a certificate issued by an intermediate is used when the intermediate comes with it (or is configured), and refused without it', async () => {
    const { root, intermediate, leaf } = threeTier(EMAIL);
    const trust = SmimeTrust.fromPem([root.cert]);
    const alone = inspectSmimeCert(leaf.cert, trust);
    expect(alone.unusable).toBe(`not trusted: no certificate of keys.smimeTrust issued the certificate (issuer CN=Test Issuing CA 1), nor an intermediate given with it`);
    const withIntermediate = inspectSmimeCert(leaf.cert + intermediate.cert, trust);
    expect(withIntermediate.unusable).toBeUndefined();
    expect(withIntermediate.chain).toEqual([readCertificate(intermediate.cert).pem]);
    expect(inspectSmimeCert(leaf.cert, SmimeTrust.fromPem([root.cert], [intermediate.cert])).unusable).toBeUndefined();
    if (openssl) {
      expect(opensslVerifies([root.cert], [], leaf.cert)).toBe(false);
      expect(opensslVerifies([root.cert], [intermediate.cert], leaf.cert)).toBe(true);
    }

    // Imported from a file holding both: the certificate is stored with its intermediate,
    // which is not reported as a refused recipient certificate (no "key usage" reason).
    const store = await newStore();
    const results = await importKeys(store, `${leaf.cert}\n${intermediate.cert}`, { smimeTrust: trust });
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ kind: 'smime', addresses: [EMAIL] });
    expect(results[0]?.refused).toBeUndefined();
    const [record] = await store.all();
    expect(pemCertificates(record!.material)).toHaveLength(2);
    // A later lookup needs nothing but the root: the stored record carries the chain.
    expect(await lookupFor(store, trust).smime(EMAIL)).toMatchObject({ source: 'import', info: { fingerprint: readCertificate(leaf.cert).fingerprint } });

    // A file of CA certificates alone is refused with what to do instead.
    const [caOnly] = await importKeys(await newStore(), intermediate.cert, { smimeTrust: trust });
    expect(caOnly?.refused).toMatch(/^a CA certificate, not a recipient's/);

    // An intermediate that may not have intermediates below it (pathLen 0) ends the chain there.
    const deeper = buildCert({ name: 'Sub CA', ca: true, issuer: intermediate });
    const deepLeaf = buildCert({ name: EMAIL, email: EMAIL, issuer: deeper });
    expect(inspectSmimeCert(deepLeaf.cert + deeper.cert + intermediate.cert, trust).unusable).toBe('not trusted: intermediate "CN=Test Issuing CA 1" allows 0 intermediate(s) below it');
    if (openssl) expect(opensslVerifies([root.cert], [deeper.cert, intermediate.cert], deepLeaf.cert)).toBe(false);
  });

  it('a trust bundle holding an EC root: certificates under the RSA root and under the EC root are both used', async () => {
    const rsaCa = createTestCa('Bundle RSA Root');
    const ec = threeTier(EMAIL, { rootKey: 'ec' });
    const dir = mkdtempSync(join(tmpdir(), 'postern-bundle-'));
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(bundle, `${ec.root.cert}${rsaCa.cert}`);
    const logs: Record<string, unknown>[] = [];
    const config = validateConfig({ hostname: 'postern.test', keys: { smimeTrust: [bundle] } });
    const { smimeTrust } = await loadSmimeTrust(config, createLogger('info', { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) }));
    expect(smimeTrust.anchors.map((a) => a.keyType).sort()).toEqual(['ec', 'rsa']);
    expect(logs.filter((l) => l.event === 'keys.trust-skipped')).toEqual([]);
    expect(inspectSmimeCert(rsaCa.issueSmime(EMAIL).cert, smimeTrust).unusable).toBeUndefined();
    expect(inspectSmimeCert(ec.leaf.cert + ec.intermediate.cert, smimeTrust).unusable).toBeUndefined();
    // An RSA leaf signed directly by the EC root (ecdsa-with-SHA256) too.
    expect(inspectSmimeCert(buildCert({ name: EMAIL, email: EMAIL, issuer: ec.root }).cert, smimeTrust).unusable).toBeUndefined();
    if (openssl) expect(opensslVerifies([ec.root.cert, rsaCa.cert], [ec.intermediate.cert], ec.leaf.cert)).toBe(true);

    // A block that cannot be read is left out with a start-up warning naming the key; the rest still count.
    writeFileSync(bundle, `${rsaCa.cert}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`);
    const partial = await loadSmimeTrust(config, createLogger('info', { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) }));
    expect(partial.smimeTrust.anchors).toHaveLength(1);
    expect(logs.find((l) => l.event === 'keys.trust-skipped')?.reason).toMatch(/^keys\.smimeTrust: certificate 2 cannot be read/);
  });

  it('certificates signed with SHA-1 are refused, the recipient certificate and an intermediate alike, saying which and why', () => {
    const { root, intermediate } = threeTier(EMAIL);
    const trust = SmimeTrust.fromPem([root.cert]);
    const sha1Leaf = buildCert({ name: EMAIL, email: EMAIL, issuer: intermediate, hash: 'sha1' });
    expect(inspectSmimeCert(sha1Leaf.cert + intermediate.cert, trust).unusable).toBe('signed with SHA-1 (sha1WithRSAEncryption): refused (collisions can forge such signatures)');
    const sha1Intermediate = buildCert({ name: 'Old Issuing CA', ca: true, issuer: root, hash: 'sha1' });
    const leaf = buildCert({ name: EMAIL, email: EMAIL, issuer: sha1Intermediate });
    expect(inspectSmimeCert(leaf.cert + sha1Intermediate.cert, trust).unusable).toBe('intermediate "CN=Old Issuing CA" is signed with SHA-1 (sha1WithRSAEncryption): refused (collisions can forge such signatures)');
    const ecRoot = buildCert({ name: 'EC Root', ca: true, keyType: 'ec' });
    expect(inspectSmimeCert(buildCert({ name: EMAIL, email: EMAIL, issuer: ecRoot, hash: 'sha1' }).cert, SmimeTrust.fromPem([ecRoot.cert])).unusable).toMatch(/^signed with SHA-1 \(ecdsa-with-SHA1\)/);
  });

  it('a CRL issued by an intermediate (or an EC root) revokes the certificates it issued', () => {
    const { root, intermediate, leaf } = threeTier(EMAIL, { rootKey: 'ec' });
    const dir = mkdtempSync(join(tmpdir(), 'postern-crl-chain-'));
    const trust = SmimeTrust.fromPem([root.cert], [intermediate.cert]);
    writeFileSync(join(dir, 'int.crl'), makeCrl(intermediate, [readCertificate(leaf.cert).serial]));
    writeFileSync(join(dir, 'root.crl'), makeCrl(root, [readCertificate(intermediate.cert).serial]));
    const byIntermediate = trust.withRevocation(new CrlSet([join(dir, 'int.crl')], trust.issuers).check);
    expect(inspectSmimeCert(leaf.cert, byIntermediate).unusable).toMatch(/^revoked on .* \(CRL of CN=Test Issuing CA 1\)$/);
    const byRoot = trust.withRevocation(new CrlSet([join(dir, 'root.crl')], trust.issuers).check);
    expect(inspectSmimeCert(leaf.cert, byRoot).unusable).toMatch(/^intermediate "CN=Test Issuing CA 1": revoked on .* \(CRL of CN=Test Root CA\)$/);
  });

  it('an EC recipient certificate is refused cleanly: "not an RSA certificate", by import and by `postern keys import` (exit 1, no stack trace)', async () => {
    const { root, intermediate } = threeTier(EMAIL);
    const ecLeaf = buildCert({ name: EMAIL, email: EMAIL, issuer: intermediate, keyType: 'ec' });
    const [refused] = await importKeys(await newStore(), ecLeaf.cert + intermediate.cert, { smimeTrust: SmimeTrust.fromPem([root.cert]) });
    expect(refused).toMatchObject({ kind: 'smime', refused: 'not an RSA certificate (EC (prime256v1)): S/MIME encryption here uses RSA key transport' });

    const dir = mkdtempSync(join(tmpdir(), 'postern-chains-cli-'));
    const config = join(dir, 'postern.yaml');
    writeFileSync(config, `hostname: postern.test\ndataDir: ${join(dir, 'var')}\nkeys:\n  smimeTrust: [${pemFile('root.pem', root.cert)}]\n`);
    const ecFile = pemFile('ec.pem', ecLeaf.cert, intermediate.cert);
    const ec = await cli(['keys', 'import', ecFile, '-c', config]);
    expect(ec.code).toBe(1);
    expect(ec.stderr).toMatch(/^refused smime:[0-9A-F]{64}: not an RSA certificate \(EC \(prime256v1\)\)/m);
    expect(ec.stderr).not.toMatch(/\n\s+at /);
    const good = await cli(['keys', 'import', pemFile('good.pem', buildCert({ name: EMAIL, email: EMAIL, issuer: intermediate }).cert, intermediate.cert), '-c', config]);
    expect(good).toMatchObject({ code: 0, stderr: '' });
    expect(good.stdout).toMatch(/^stored smime:[0-9A-F]{64} for pat@dest\.test \(expires \d{4}-\d\d-\d\d\)$/m);
    const list = JSON.parse((await cli(['keys', 'list', '-c', config, '--json'])).stdout) as { usable: boolean }[];
    expect(list.map((r) => r.usable)).toEqual([true]);
  });
});
