import { simpleParser } from 'mailparser';
import { generateKey } from 'openpgp';
import { describe, expect, it } from 'vitest';
import { pgpProtect } from '../../src/protect/pgp.js';
import { findProgram } from '../helpers/programs.js';
import { armoredOf, gpgDecryptor } from './gpg-decrypt.js';

const gpg = findProgram('gpg');

// Headers as Exchange Online / Outlook put them on every message they relay (Thread-Topic,
// Thread-Index), with the RFC 5322 Keywords and Comments fields a client may add.
const SUBJECT = 'HIV test result for J. Smith';
const message = Buffer.from(
  [
    'From: dr@org.test',
    'To: patient@dest.test',
    `Subject: ${SUBJECT}`,
    `Thread-Topic: ${SUBJECT}`,
    'Thread-Index: AQHZabcdEFGHijklMNOPqrstUVWX',
    'Keywords: HIV, J. Smith',
    'Comments: positive result for J. Smith',
    'Date: Tue, 01 Dec 2026 10:00:00 +0000',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Positive.',
    '',
  ].join('\r\n'),
);

// Skipped only on a developer machine without GnuPG; under CI=true findProgram throws.
describe.skipIf(!gpg)('protectSubject hides every header field that repeats the subject', () => {
  it('outside: Subject "...", no Thread-Topic, Keywords or Comments, Thread-Index kept; gpg --decrypt finds them all inside', async () => {
    const rcpt = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'patient@dest.test' }], format: 'armored' });
    const out = await pgpProtect(message, { recipientKeys: [rcpt.publicKey], protectSubject: true });
    expect(out.toString('latin1')).not.toMatch(/HIV|J\. Smith|positive/);
    const outer = await simpleParser(out);
    expect(outer.subject).toBe('...');
    expect([...outer.headers.keys()]).not.toContain('thread-topic');
    expect([...outer.headers.keys()]).not.toContain('keywords');
    expect([...outer.headers.keys()]).not.toContain('comments');
    // A timestamp and a GUID, no words of the subject: Outlook threads replies by it.
    expect(outer.headers.get('thread-index')).toBe('AQHZabcdEFGHijklMNOPqrstUVWX');

    const inner = await simpleParser(gpgDecryptor(gpg as string, [rcpt.privateKey])(armoredOf(out)));
    expect(inner.subject).toBe(SUBJECT);
    expect(inner.headers.get('thread-topic')).toBe(SUBJECT);
    expect(inner.headers.get('keywords')).toBe('HIV, J. Smith');
    expect(inner.headers.get('comments')).toBe('positive result for J. Smith');
    expect(inner.headers.get('content-type')).toMatchObject({ value: 'text/plain', params: { 'protected-headers': 'v1' } });
    expect(inner.text?.trim()).toBe('Positive.');
  });
});
