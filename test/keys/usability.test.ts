import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { generateKey, readPrivateKey, revokeKey } from 'openpgp';
import { describe, expect, it, vi } from 'vitest';
import { CrlSet, parseCrl } from '../../src/keys/crl.js';
import { inspectPgpKey } from '../../src/keys/pgp-key.js';
import { inspectSmimeCert } from '../../src/keys/smime-cert.js';
import { SmimeTrust } from '../../src/keys/smime-trust.js';
import { createTestCa } from '../helpers/pki.js';
import { findProgram } from '../helpers/programs.js';
import { makeCrl } from './crl-fixture.js';

const email = 'patient@dest.test';
const DAY = 86_400_000;
const openssl = findProgram('openssl');

describe('which OpenPGP keys are used', () => {
  it('a current Curve25519 or RSA-3072 key is usable; the reasons for the others are named', async () => {
    const ok = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email }], format: 'armored' });
    const info = await inspectPgpKey(ok.publicKey);
    expect(info.emails).toEqual([email]);
    expect(info.unusable).toBeUndefined();
    expect(info.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    const rsa = await generateKey({ type: 'rsa', rsaBits: 3072, userIDs: [{ email }], format: 'armored' });
    expect((await inspectPgpKey(rsa.publicKey)).unusable).toBeUndefined();

    const expired = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email }], date: new Date(Date.now() - 3 * DAY), keyExpirationTime: DAY / 1000, format: 'armored' });
    expect((await inspectPgpKey(expired.publicKey)).unusable).toMatch(/^expired on \d{4}-/);

    const revoked = await revokeKey({ key: await readPrivateKey({ armoredKey: ok.privateKey }), format: 'armored' });
    expect((await inspectPgpKey(revoked.publicKey)).unusable).toBe('revoked');
  });

  it('RSA below 2048 bits is refused, for the primary key and for the encryption subkey', async () => {
    const config = { minRSABits: 1024 };
    const small = await generateKey({ type: 'rsa', rsaBits: 1024, userIDs: [{ email }], format: 'armored', config });
    expect((await inspectPgpKey(small.publicKey)).unusable).toBe('primary key: rsaEncryptSign key of 1024 bits (at least 2048 required)');
    const smallSub = await generateKey({ type: 'rsa', rsaBits: 3072, subkeys: [{ type: 'rsa', rsaBits: 1024 }], userIDs: [{ email }], format: 'armored', config });
    // openpgp itself refuses to pick a weak subkey; the reason says so.
    expect((await inspectPgpKey(smallSub.publicKey)).unusable).toMatch(/^no usable encryption key \(.*RSA keys shorter than 2047 bits are considered too weak/);
  });

  it('a key whose self-signature is SHA-1 is refused (GnuPG --cert-digest-algo SHA1 fixture)', async () => {
    const armored = readFileSync(join(process.cwd(), 'test/fixtures/keys/sha1-self-signed.asc'), 'utf8');
    const info = await inspectPgpKey(armored);
    expect(info.emails).toEqual(['old-sha1@example.org']);
    expect(info.bits).toBe(2048);
    expect(info.unusable).toBe('self-signed with SHA-1 (SHA-1 and weaker are refused)');
  });
});

describe('which S/MIME certificates are used', () => {
  const ca = createTestCa('Postern S/MIME Test CA');
  const trust = SmimeTrust.fromPem([ca.cert]);

  it('needs a chain to the trust store, validity, 2048 bits, key encipherment; names what is wrong', () => {
    const good = inspectSmimeCert(ca.issueSmime(email).cert, trust);
    expect(good.emails).toEqual([email]);
    expect(good.unusable).toBeUndefined();
    expect(inspectSmimeCert(ca.issueSmime(email, { expired: true }).cert, trust).unusable).toMatch(/^expired on /);
    expect(inspectSmimeCert(createTestCa('Someone Else').issueSmime(email).cert, trust).unusable).toMatch(/^not trusted: /);
    expect(inspectSmimeCert(ca.issueSmime(email, { bits: 1024 }).cert, trust).unusable).toBe('RSA key shorter than 2048 bits');
    expect(inspectSmimeCert(ca.issueSmime(email, { keyUsage: 'signOnly' }).cert, trust).unusable).toBe('key usage does not allow key encipherment');
    // A TLS server certificate is not for mail.
    expect(inspectSmimeCert(ca.issue(['dest.test']).cert, trust).unusable).toBe('extended key usage lacks emailProtection');
  });

  it('a CRL of the issuing CA revokes a certificate; a stale CRL fails closed; a forged CRL stops the start', () => {
    const revoked = ca.issueSmime(email);
    const other = ca.issueSmime('other@dest.test');
    const serial = forge.pki.certificateFromPem(revoked.cert).serialNumber;
    const dir = mkdtempSync(join(tmpdir(), 'postern-crl-'));
    const file = join(dir, 'ca.crl');
    writeFileSync(file, makeCrl(ca, [serial]));
    if (openssl) expect(execFileSync(openssl, ['crl', '-in', file, '-CAfile', ca.caFile, '-noout'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString()).toBe('');
    const crls = new CrlSet([file], trust.issuers);
    const checked = trust.withRevocation(crls.check);
    expect(inspectSmimeCert(revoked.cert, checked).unusable).toMatch(/^revoked on .* \(CRL of CN=Postern S\/MIME Test CA\)$/);
    expect(inspectSmimeCert(other.cert, checked).unusable).toBeUndefined();

    const staleFile = join(dir, 'stale.crl');
    writeFileSync(staleFile, makeCrl(ca, [], { nextUpdate: new Date(Date.now() - DAY) }));
    expect(inspectSmimeCert(other.cert, trust.withRevocation(new CrlSet([staleFile], trust.issuers).check)).unusable).toMatch(/CRL of CN=Postern S\/MIME Test CA is out of date/);

    const forged = join(dir, 'forged.crl');
    const impostor = createTestCa('Postern S/MIME Test CA');
    writeFileSync(forged, makeCrl(impostor, [serial]));
    expect(() => new CrlSet([forged], trust.issuers)).toThrow(/keys\.smimeCrls: \S+forged\.crl: CRL of CN=Postern S\/MIME Test CA: bad signature/);
    expect(() => parseCrl(readFileSync(file), [])).toThrow(/its issuer is not in keys\.smimeTrust/);
  });

  it('a refreshed CRL that cannot be used is logged once per problem, and the CRLs read before stay in force', () => {
    const revoked = ca.issueSmime(email);
    const serial = forge.pki.certificateFromPem(revoked.cert).serialNumber;
    const dir = mkdtempSync(join(tmpdir(), 'postern-crl-'));
    const file = join(dir, 'ca.crl');
    writeFileSync(file, makeCrl(ca, [serial]));
    const failures: string[] = [];
    const crls = new CrlSet([file], trust.issuers, (reason) => failures.push(reason));
    const checked = trust.withRevocation(crls.check);
    const isRevoked = () => /^revoked on /.test(inspectSmimeCert(revoked.cert, checked).unusable ?? '');
    let now = Date.now();
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => now);
    // Each file change gets a later mtime, as a cron job's rewrite would.
    let mtime = Date.now() / 1000;
    const rewrite = (pem: string) => {
      writeFileSync(file, pem);
      utimesSync(file, (mtime += 10), mtime);
    };
    const nextMinute = () => (now += 61_000);
    try {
      expect(isRevoked()).toBe(true);

      rewrite(makeCrl(createTestCa('Postern S/MIME Test CA'), []));
      nextMinute();
      expect(isRevoked()).toBe(true);
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatch(/^keys\.smimeCrls: \S+ca\.crl: CRL of CN=Postern S\/MIME Test CA: bad signature$/);
      nextMinute();
      expect(isRevoked()).toBe(true);
      expect(failures).toHaveLength(1);

      rmSync(file);
      nextMinute();
      expect(isRevoked()).toBe(true);
      expect(failures).toHaveLength(2);
      expect(failures[1]).toMatch(/^keys\.smimeCrls: ENOENT.*ca\.crl/);

      rewrite(makeCrl(ca, []));
      nextMinute();
      expect(isRevoked()).toBe(false);
      expect(failures).toHaveLength(2);
    } finally {
      clock.mockRestore();
    }
  });
});
