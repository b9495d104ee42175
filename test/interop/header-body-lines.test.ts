import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { generateKey } from 'openpgp';
import { describe, expect, it, onTestFinished } from 'vitest';
import { pgpProtect } from '../../src/protect/pgp.js';
import { smimeProtect } from '../../src/protect/smime.js';
import { createTestCa } from '../helpers/pki.js';
import { findProgram } from '../helpers/programs.js';
import { armoredOf, gpgDecryptor } from './gpg-decrypt.js';

const gpg = findProgram('gpg');
const openssl = findProgram('openssl');

// A script that forgot the blank line after its headers (Postern put Received on top).
// Every reader shows the last two lines as the body: they must travel encrypted.
const PHI = 'Patient J. Smith DOB 1970-01-01: HIV positive';
const message = Buffer.from(['Received: from app by postern', 'From: lab@org.test', 'To: patient@dest.test', 'Subject: result', PHI, 'Please call us.', ''].join('\r\n'));
const entity = `Content-Type: text/plain; charset=us-ascii\r\n\r\n${PHI}\r\nPlease call us.\r\n`;

/** The encrypted output as a mail client reads it: the header fields, and nothing of the body lines. */
async function expectOnlyHeadersOutside(out: Buffer): Promise<void> {
  expect(out.toString('latin1')).not.toContain('HIV');
  expect(out.toString('latin1')).not.toContain('Please call us');
  const outer = await simpleParser(out);
  expect([...outer.headers.keys()].filter((k) => !k.startsWith('content-') && k !== 'mime-version')).toEqual(['received', 'from', 'to', 'subject']);
}

describe('body lines sent in the header section are encrypted, as the body every reader shows', () => {
  // Skipped only on a developer machine without GnuPG; under CI=true findProgram throws.
  it.skipIf(!gpg)('OpenPGP: outside only the header fields; gpg --decrypt gives the lines back as the body', async () => {
    const rcpt = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'patient@dest.test' }], format: 'armored' });
    const out = await pgpProtect(message, { recipientKeys: [rcpt.publicKey], protectSubject: false });
    await expectOnlyHeadersOutside(out);
    expect(gpgDecryptor(gpg as string, [rcpt.privateKey])(armoredOf(out)).toString('latin1')).toBe(entity);
  });

  // Skipped only on a developer machine without OpenSSL; under CI=true findProgram throws.
  it.skipIf(!openssl)('S/MIME: outside only the header fields; openssl cms -decrypt gives the lines back as the body', async () => {
    const rcpt = createTestCa('Header Section CA').issueSmime('patient@dest.test');
    const out = smimeProtect(message, { recipientCerts: [rcpt.cert] });
    await expectOnlyHeadersOutside(out);
    const dir = mkdtempSync(join(tmpdir(), 'postern-head-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'msg.eml'), out);
    writeFileSync(join(dir, 'rcpt.pem'), rcpt.cert);
    writeFileSync(join(dir, 'rcpt.key'), rcpt.key);
    const decrypted = execFileSync(openssl as string, ['cms', '-decrypt', '-in', join(dir, 'msg.eml'), '-recip', join(dir, 'rcpt.pem'), '-inkey', join(dir, 'rcpt.key')]);
    expect(decrypted.toString('latin1')).toBe(entity);
  });
});
