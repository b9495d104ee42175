import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { decryptKey, generateKey, readPrivateKey } from 'openpgp';
import { describe, expect, it, onTestFinished } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { splitEntity } from '../../src/protect/mime-entity.js';
import { pgpProtect } from '../../src/protect/pgp.js';
import { createProtector } from '../../src/protect/protector.js';
import { smimeProtect } from '../../src/protect/smime.js';
import { freshGnupgHome } from '../helpers/gnupg.js';
import { createTestCa } from '../helpers/pki.js';
import { findProgram } from '../helpers/programs.js';
import { ATTACHMENT, richMessage } from '../helpers/sample-message.js';
import { signerFrom, threeTier } from '../keys/smime-pki.js';

const gpg = findProgram('gpg');
const openssl = findProgram('openssl');

const HEADERS = ['From: "Dr. A" <dr@client.test>', 'To: patient@dest.test', 'Cc: nurse@dest.test', 'Subject: Results for J. Smith', 'Date: Tue, 01 Dec 2026 10:00:00 +0000', 'Message-ID: <m1@client.test>'];
const original = richMessage(HEADERS);

/**
 * What a mail client would show of a decrypted entity, read by mailparser (not by
 * Postern's own MIME code): the text and HTML alternatives and the attachment's bytes.
 */
async function expectOriginalContent(entity: Buffer): Promise<ParsedMail> {
  const parsed = await simpleParser(entity);
  expect(parsed.text?.trim()).toBe('The results are in the attachment.');
  expect(parsed.html).toContain('<p>The results are in the <b>attachment</b>.</p>');
  expect(parsed.attachments).toHaveLength(1);
  expect(parsed.attachments[0]).toMatchObject({ filename: 'results.bin', contentType: 'application/octet-stream' });
  expect(parsed.attachments[0]!.content.equals(ATTACHMENT)).toBe(true);
  return parsed;
}

/** The two parts of RFC 3156 multipart/encrypted, as mailparser reads the outer message. */
async function pgpMimeParts(out: Buffer): Promise<{ outer: ParsedMail; armored: string }> {
  const outer = await simpleParser(out);
  const type = outer.headers.get('content-type') as { value: string; params: Record<string, string> };
  expect(type).toMatchObject({ value: 'multipart/encrypted', params: { protocol: 'application/pgp-encrypted' } });
  expect(outer.attachments.map((a) => a.contentType)).toEqual(['application/pgp-encrypted', 'application/octet-stream']);
  expect(outer.attachments[0]!.content.toString().trim()).toBe('Version: 1');
  const armored = outer.attachments[1]!.content.toString();
  expect(armored).toMatch(/^-----BEGIN PGP MESSAGE-----[\s\S]+-----END PGP MESSAGE-----\s*$/);
  return { outer, armored };
}

// Skipped only on a developer machine without GnuPG; under CI=true findProgram throws.
describe.skipIf(!gpg)('OpenPGP output read by GnuPG', () => {
  async function gnupgWith(keys: string[]) {
    const gnupg = freshGnupgHome();
    onTestFinished(() => gnupg.done());
    writeFileSync(join(gnupg.home, 'keys.asc'), keys.join('\n'));
    execFileSync(gpg as string, ['--batch', '--import', join(gnupg.home, 'keys.asc')], { env: gnupg.env, stdio: 'ignore' });
    const decrypt = (armored: string, status = false) => {
      writeFileSync(join(gnupg.home, 'm.asc'), armored);
      const args = status ? ['--batch', '--status-fd', '1', '--decrypt', '--output', '/dev/null'] : ['--batch', '--decrypt'];
      return execFileSync(gpg as string, [...args, join(gnupg.home, 'm.asc')], { env: gnupg.env, stdio: ['ignore', 'pipe', 'pipe'] });
    };
    return decrypt;
  }

  it('gpg --decrypt gives back the original MIME entity (text, HTML, attachment bytes), and verifies the organisation signature', async () => {
    const recipient = await generateKey({ type: 'rsa', rsaBits: 3072, userIDs: [{ email: 'patient@dest.test' }], format: 'armored' });
    const org = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'Client Org', email: 'dr@client.test' }], passphrase: 'org-pass', format: 'armored' });
    const signingKey = await decryptKey({ privateKey: await readPrivateKey({ armoredKey: org.privateKey }), passphrase: 'org-pass' });
    const out = await pgpProtect(original, { recipientKeys: [recipient.publicKey], signingKey, protectSubject: false });
    expect(out.toString()).not.toContain('The results are in');
    const { outer, armored } = await pgpMimeParts(out);
    expect(outer.subject).toBe('Results for J. Smith');
    const decrypt = await gnupgWith([recipient.privateKey, org.publicKey]);
    const decrypted = decrypt(armored);
    await expectOriginalContent(decrypted);
    expect(decrypted.equals(splitEntity(original).entity)).toBe(true);
    expect(decrypt(armored, true).toString()).toMatch(/\[GNUPG:\] GOODSIG [0-9A-F]+ Client Org <dr@client\.test>/);
  });

  it('gpg reads the armor whatever the base64 padding (messages of every length modulo 3)', async () => {
    const recipient = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'patient@dest.test' }], format: 'armored' });
    const decrypt = await gnupgWith([recipient.privateKey]);
    for (const extra of ['', 'x', 'xy', 'xyz', 'wxyz', 'vwxyz']) {
      const raw = Buffer.from(`Subject: pad\r\nContent-Type: text/plain\r\n\r\nhello${extra}\r\n`);
      const { armored } = await pgpMimeParts(await pgpProtect(raw, { recipientKeys: [recipient.publicKey], protectSubject: false }));
      expect(decrypt(armored).toString()).toBe(`Content-Type: text/plain\r\n\r\nhello${extra}\r\n`);
    }
  });

  it('protectSubject: the outer Subject is "...", and the decrypted entity carries the original headers as protected headers (v1)', async () => {
    const recipient = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'patient@dest.test' }], format: 'armored' });
    const out = await pgpProtect(original, { recipientKeys: [recipient.publicKey], protectSubject: true });
    const { outer, armored } = await pgpMimeParts(out);
    expect(outer.subject).toBe('...');
    expect(out.toString()).not.toContain('J. Smith');
    const inner = await expectOriginalContent((await gnupgWith([recipient.privateKey]))(armored));
    expect(inner.subject).toBe('Results for J. Smith');
    expect(inner.from?.value).toEqual([{ address: 'dr@client.test', name: 'Dr. A' }]);
    expect((inner.to as { value: unknown[] }).value).toEqual([{ address: 'patient@dest.test', name: '' }]);
    expect((inner.cc as { value: unknown[] }).value).toEqual([{ address: 'nurse@dest.test', name: '' }]);
    expect(inner.messageId).toBe('<m1@client.test>');
    expect(inner.date?.toISOString()).toBe('2026-12-01T10:00:00.000Z');
    expect(inner.headers.get('content-type')).toMatchObject({ value: 'multipart/mixed', params: { 'protected-headers': 'v1' } });
  });
});

// Skipped only on a developer machine without OpenSSL; under CI=true findProgram throws.
describe.skipIf(!openssl)('S/MIME output read by OpenSSL', () => {
  it('openssl cms -decrypt gives back the entity (text, HTML, attachment bytes); -verify checks the organisation signature against the root alone', async () => {
    const ca = createTestCa('Postern S/MIME Test CA');
    const rcpt = ca.issueSmime('patient@dest.test');
    // The organisation's certificate comes from an intermediate: the signature must carry it.
    const org = threeTier('dr@client.test');
    const dir = mkdtempSync(join(tmpdir(), 'postern-smime-'));
    const out = smimeProtect(original, { recipientCerts: [rcpt.cert], signer: signerFrom(org.leaf, [org.intermediate.cert]) });
    const outer = await simpleParser(out);
    expect(outer.subject).toBe('Results for J. Smith');
    expect(outer.headers.get('content-type')).toMatchObject({ value: 'application/pkcs7-mime', params: { 'smime-type': 'enveloped-data' } });
    expect(outer.attachments.map((a) => a.filename)).toEqual(['smime.p7m']);
    writeFileSync(join(dir, 'msg.eml'), out);
    writeFileSync(join(dir, 'rcpt.pem'), rcpt.cert);
    writeFileSync(join(dir, 'rcpt.key'), rcpt.key);
    writeFileSync(join(dir, 'root.pem'), org.root.cert);
    const decrypted = execFileSync(openssl as string, ['cms', '-decrypt', '-in', join(dir, 'msg.eml'), '-recip', join(dir, 'rcpt.pem'), '-inkey', join(dir, 'rcpt.key')]);
    // What a client shows of the signed entity: the signature part beside the original content.
    const signed = await simpleParser(decrypted);
    expect(signed.headers.get('content-type')).toMatchObject({ value: 'multipart/signed', params: { protocol: 'application/pkcs7-signature', micalg: 'sha-256' } });
    const p7s = signed.attachments.find((a) => a.contentType === 'application/pkcs7-signature');
    expect(p7s).toBeDefined();
    writeFileSync(join(dir, 'signed.eml'), decrypted);
    const verified = execFileSync(openssl as string, ['cms', '-verify', '-in', join(dir, 'signed.eml'), '-CAfile', join(dir, 'root.pem'), '-purpose', 'smimesign'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await expectOriginalContent(verified);
    expect(verified.equals(splitEntity(original).entity)).toBe(true);
    // The signature carries the chain and says which ciphers the sender prefers (RFC 8551 §2.5.2).
    writeFileSync(join(dir, 'sig.der'), p7s!.content);
    const printed = execFileSync(openssl as string, ['cms', '-cmsout', '-print', '-inform', 'DER', '-in', join(dir, 'sig.der')]).toString();
    expect(printed).toMatch(/S\/MIME Capabilities/);
    expect(printed.match(/aes-(256|192|128)-cbc/g)).toEqual(['aes-256-cbc', 'aes-192-cbc', 'aes-128-cbc']);
    expect(printed.match(/subject: CN=/g)).toHaveLength(2);
    // Unsigned variant decrypts straight to the entity.
    writeFileSync(join(dir, 'plain.eml'), smimeProtect(original, { recipientCerts: [rcpt.cert] }));
    const plain = execFileSync(openssl as string, ['cms', '-decrypt', '-in', join(dir, 'plain.eml'), '-recip', join(dir, 'rcpt.pem'), '-inkey', join(dir, 'rcpt.key')]);
    await expectOriginalContent(plain);
  });

  it('openssl cms -decrypt with the escrow certificate (protect.smime.escrowCert) gives back the same entity as the recipient gets', async () => {
    const ca = createTestCa('Postern S/MIME Escrow CA');
    const rcpt = ca.issueSmime('patient@dest.test');
    const escrow = ca.issueSmime('compliance@client.test');
    const protector = await createProtector(validateConfig({ hostname: 'postern.test', protect: { smime: { escrowCert: escrow.cert } } }));
    const dir = mkdtempSync(join(tmpdir(), 'postern-escrow-'));
    writeFileSync(join(dir, 'msg.eml'), await protector.protect(original, { method: 'smime', recipientKeys: [rcpt.cert] }));
    const decryptAs = (who: { cert: string; key: string }, name: string) => {
      writeFileSync(join(dir, `${name}.pem`), who.cert);
      writeFileSync(join(dir, `${name}.key`), who.key);
      return execFileSync(openssl as string, ['cms', '-decrypt', '-in', join(dir, 'msg.eml'), '-recip', join(dir, `${name}.pem`), '-inkey', join(dir, `${name}.key`)], { stdio: ['ignore', 'pipe', 'pipe'] });
    };
    const byEscrow = decryptAs(escrow, 'escrow');
    await expectOriginalContent(byEscrow);
    expect(byEscrow.equals(splitEntity(original).entity)).toBe(true);
    expect(byEscrow.equals(decryptAs(rcpt, 'rcpt'))).toBe(true);
    // Someone else's certificate from the same CA opens nothing.
    expect(() => decryptAs(ca.issueSmime('other@client.test'), 'other')).toThrow();
  });
});
