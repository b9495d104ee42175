import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decryptKey, generateKey, readPrivateKey } from 'openpgp';
import { describe, expect, it, onTestFinished } from 'vitest';
import { splitEntity } from '../../src/protect/mime-entity.js';
import { pgpProtect } from '../../src/protect/pgp.js';
import { smimeProtect } from '../../src/protect/smime.js';
import { createTestCa } from '../helpers/pki.js';
import { findProgram } from '../helpers/programs.js';
import { ATTACHMENT, richMessage } from '../helpers/sample-message.js';
import { freshGnupgHome } from '../helpers/gnupg.js';

const gpg = findProgram('gpg');
const openssl = findProgram('openssl');

const original = richMessage(['From: "Dr. A" <dr@client.test>', 'To: patient@dest.test', 'Subject: Results', 'Message-ID: <m1@client.test>']);

describe.skipIf(!gpg)('OpenPGP output read by GnuPG', () => {
  it('gpg --decrypt gives back the original MIME entity, and verifies the organisation signature', async () => {
    const gnupg = freshGnupgHome();
    const { home, env } = gnupg;
    onTestFinished(() => gnupg.done());
    const recipient = await generateKey({ type: 'rsa', rsaBits: 3072, userIDs: [{ email: 'patient@dest.test' }], format: 'armored' });
    const org = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'Client Org', email: 'dr@client.test' }], passphrase: 'org-pass', format: 'armored' });
    const signingKey = await decryptKey({ privateKey: await readPrivateKey({ armoredKey: org.privateKey }), passphrase: 'org-pass' });
    const out = await pgpProtect(original, { recipientKeys: [recipient.publicKey], signingKey, protectSubject: false });
    expect(out.toString()).toMatch(/Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted"/);
    expect(out.toString()).not.toContain('The results are in');
    writeFileSync(join(home, 'r.asc'), recipient.privateKey);
    writeFileSync(join(home, 'org.asc'), org.publicKey);
    execFileSync(gpg as string, ['--batch', '--import', join(home, 'r.asc'), join(home, 'org.asc')], { env, stdio: 'ignore' });
    const armored = /-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/.exec(out.toString())![0];
    writeFileSync(join(home, 'm.asc'), armored);
    const decrypted = execFileSync(gpg as string, ['--batch', '--status-fd', '2', '--decrypt', join(home, 'm.asc')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    expect(decrypted.equals(splitEntity(original).entity)).toBe(true);
    const status = execFileSync(gpg as string, ['--batch', '--status-fd', '1', '--decrypt', '--output', '/dev/null', join(home, 'm.asc')], { env }).toString();
    expect(status).toMatch(/\[GNUPG:\] GOODSIG [0-9A-F]+ Client Org <dr@client\.test>/);
    expect(decrypted.toString()).toContain(ATTACHMENT.toString('base64').slice(0, 76));
  });
});

describe.skipIf(!openssl)('S/MIME output read by OpenSSL', () => {
  it('openssl cms -decrypt gives back the entity, and -verify checks the organisation signature', () => {
    const ca = createTestCa('Postern S/MIME Test CA');
    const rcpt = ca.issueSmime('patient@dest.test');
    const org = ca.issueSmime('dr@client.test');
    const dir = mkdtempSync(join(tmpdir(), 'postern-smime-'));
    const out = smimeProtect(original, { recipientCerts: [rcpt.cert], signer: org });
    expect(out.toString()).toMatch(/Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/);
    writeFileSync(join(dir, 'msg.eml'), out);
    writeFileSync(join(dir, 'rcpt.pem'), rcpt.cert);
    writeFileSync(join(dir, 'rcpt.key'), rcpt.key);
    const decrypted = execFileSync(openssl as string, ['cms', '-decrypt', '-in', join(dir, 'msg.eml'), '-recip', join(dir, 'rcpt.pem'), '-inkey', join(dir, 'rcpt.key')]);
    expect(decrypted.toString()).toMatch(/^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"/);
    writeFileSync(join(dir, 'signed.eml'), decrypted);
    const verified = execFileSync(openssl as string, ['cms', '-verify', '-in', join(dir, 'signed.eml'), '-CAfile', ca.caFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    expect(verified.equals(splitEntity(original).entity)).toBe(true);
    // Unsigned variant decrypts straight to the entity.
    writeFileSync(join(dir, 'plain.eml'), smimeProtect(original, { recipientCerts: [rcpt.cert] }));
    const plain = execFileSync(openssl as string, ['cms', '-decrypt', '-in', join(dir, 'plain.eml'), '-recip', join(dir, 'rcpt.pem'), '-inkey', join(dir, 'rcpt.key')]);
    expect(plain.equals(splitEntity(original).entity)).toBe(true);
  });
});
