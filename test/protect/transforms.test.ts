import { Readable } from 'node:stream';
import { decrypt, generateKey, readMessage, readPrivateKey } from 'openpgp';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { splitEntity } from '../../src/protect/mime-entity.js';
import { pgpProtect } from '../../src/protect/pgp.js';
import { createProtector } from '../../src/protect/protector.js';
import { removeSubjectTag } from '../../src/protect/subject-tag.js';
import { createTestCa } from '../helpers/pki.js';
import { richMessage } from '../helpers/sample-message.js';

const HEADERS = ['From: "Dr. A" <dr@client.test>', 'To: patient@dest.test', 'Subject: Lab results for J. Smith', 'Message-ID: <t1@client.test>'];
const armoredOf = (raw: Buffer) => /-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/.exec(raw.toString('latin1'))![0];
const keyPair = (email: string) => generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email }], format: 'armored' });

describe('the MIME entity that goes inside', () => {
  it('keeps Content-* headers and the body exactly; other headers stay outside', () => {
    const raw = richMessage(HEADERS);
    const { outer, entity } = splitEntity(raw);
    expect(outer).toEqual(HEADERS);
    expect(entity.toString('latin1')).toMatch(/^Content-Type: multipart\/mixed; boundary="mix"\r\n\r\n--mix\r\n/);
    const bodyOf = (b: Buffer) => b.subarray(b.indexOf('\r\n\r\n') + 4);
    expect(bodyOf(entity).equals(bodyOf(raw))).toBe(true);
    // A message without MIME headers is text/plain (RFC 2045 §5.2).
    expect(splitEntity(Buffer.from('Subject: x\r\n\r\nhello\r\n')).entity.toString()).toBe('Content-Type: text/plain; charset=us-ascii\r\n\r\nhello\r\n');
  });
});

describe('OpenPGP: protected subject, signing identity, escrow', () => {
  it('protectSubject replaces the outer Subject; the real one travels inside, signed by the sender domain identity', async () => {
    const [rcpt, org, escrow] = await Promise.all([keyPair('patient@dest.test'), keyPair('dr@client.test'), keyPair('compliance@client.test')]);
    const config = validateConfig({
      hostname: 'postern.test',
      identities: { '*.client.test': { pgpKey: org.privateKey } },
      protect: { pgp: { protectSubject: true, escrowKey: escrow.publicKey } },
    });
    const protector = await createProtector(config);
    const out = await protector.protect(richMessage(HEADERS), { method: 'pgp', recipientKeys: [rcpt.publicKey], senderDomain: 'mail.client.test' });
    const text = out.toString('latin1');
    expect(text).toMatch(/^Subject: \.\.\.$/m);
    expect(text).not.toContain('J. Smith');
    for (const reader of [rcpt, escrow]) {
      const { data, signatures } = await decrypt({
        message: await readMessage({ armoredMessage: armoredOf(out) }),
        decryptionKeys: await readPrivateKey({ armoredKey: reader.privateKey }),
        verificationKeys: await readPrivateKey({ armoredKey: org.privateKey }).then((k) => k.toPublic()),
        format: 'binary',
      });
      const inner = Buffer.from(data as Uint8Array).toString('latin1');
      // The original header fields travel inside, and the entity says they are protected headers.
      expect(inner).toMatch(/^From: "Dr\. A" <dr@client\.test>\r\nTo: patient@dest\.test\r\nSubject: Lab results for J\. Smith\r\nMessage-ID: <t1@client\.test>\r\nContent-Type: multipart\/mixed; boundary="mix"; protected-headers="v1"\r\n\r\n--mix\r\n/);
      await expect(signatures[0]!.verified).resolves.toBe(true);
    }
  });

  it('an identity key with a passphrase is opened at start; a wrong passphrase stops the start naming the domain', async () => {
    const org = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'dr@client.test' }], passphrase: 'correct horse', format: 'armored' });
    const good = validateConfig({ hostname: 'postern.test', identities: { 'client.test': { pgpKey: org.privateKey, pgpPassphrase: 'correct horse' } } });
    await expect(createProtector(good)).resolves.toBeDefined();
    const bad = validateConfig({ hostname: 'postern.test', identities: { 'client.test': { pgpKey: org.privateKey, pgpPassphrase: 'wrong' } } });
    await expect(createProtector(bad)).rejects.toThrow(/^identities\.client\.test: /);
    const unsigned = await pgpProtect(richMessage(HEADERS), { recipientKeys: [(await keyPair('p@dest.test')).publicKey], protectSubject: false });
    expect(unsigned.toString('latin1')).toMatch(/^Subject: Lab results for J\. Smith$/m);
  });
});

describe('S/MIME: size guard and escrow', () => {
  it('refuses above protect.smime.maxSize, and adds the escrow certificate as a recipient', async () => {
    const ca = createTestCa('Protect CA');
    const rcpt = ca.issueSmime('patient@dest.test');
    const escrow = ca.issueSmime('compliance@client.test');
    const config = validateConfig({ hostname: 'postern.test', protect: { smime: { maxSize: '8KB', escrowCert: escrow.cert } } });
    const protector = await createProtector(config);
    await expect(protector.protect(Buffer.alloc(9000, 0x41), { method: 'smime', recipientKeys: [rcpt.cert] })).rejects.toThrow(/above protect\.smime\.maxSize \(8192\)/);
    const out = await protector.protect(richMessage(HEADERS), { method: 'smime', recipientKeys: [rcpt.cert] });
    const b64 = out.toString('latin1').split('\r\n\r\n').slice(1).join('').replace(/\s+/g, '');
    const p7 = forge.pkcs7.messageFromAsn1(forge.asn1.fromDer(forge.util.decode64(b64))) as unknown as { recipients: { serialNumber: string }[] };
    const serial = (pem: string) => forge.pki.certificateFromPem(pem).serialNumber;
    expect(p7.recipients.map((r) => r.serialNumber).sort()).toEqual([serial(rcpt.cert), serial(escrow.cert)].sort());
  });
});

describe('subject tag removal on a stream', () => {
  it('rewrites only the Subject, and destroying the result releases the source', async () => {
    const source = Readable.from([Buffer.from('Subject: [secure] Results\r\nFrom: a@b.c\r\n\r\n'), Buffer.from('body [secure] stays\r\n')]);
    const out = removeSubjectTag(source, '[secure]') as Readable;
    const chunks: Buffer[] = [];
    for await (const c of out) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('Subject: Results\r\nFrom: a@b.c\r\n\r\nbody [secure] stays\r\n');
    const unread = new Readable({ read() {} });
    const early = removeSubjectTag(unread, '[secure]') as Readable;
    early.destroy();
    await new Promise((r) => setImmediate(r));
    expect(unread.destroyed).toBe(true);
  });
});
