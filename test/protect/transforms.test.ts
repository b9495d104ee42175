import { createPrivateKey } from 'node:crypto';
import { Readable } from 'node:stream';
import { decrypt, generateKey, readMessage, readPrivateKey, revokeKey } from 'openpgp';
import forge from 'node-forge';
import { describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { splitEntity } from '../../src/protect/mime-entity.js';
import { pgpProtect } from '../../src/protect/pgp.js';
import { createProtector } from '../../src/protect/protector.js';
import { removeSubjectTag } from '../../src/protect/subject-tag.js';
import { createTestCa } from '../helpers/pki.js';
import { richMessage } from '../helpers/sample-message.js';
import { buildCert } from '../keys/smime-pki.js';

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
    await expect(createProtector(bad)).rejects.toThrow(/^identities\.client\.test\.pgpKey: /);
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

describe('organisation identities and escrow: checked at start, watched for expiry', () => {
  const ca = createTestCa('Identity CA');
  const email = 'dr@client.test';
  const withIdentity = (identity: Record<string, unknown>, protect: Record<string, unknown> = {}) => validateConfig({ hostname: 'postern.test', identities: { 'client.test': identity }, protect });
  const logged = () => {
    const lines: Record<string, unknown>[] = [];
    return { lines, log: createLogger('info', { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }) };
  };

  it('an S/MIME key behind smimeKeyPassphrase opens with it; without or with a wrong one the start stops naming the setting', async () => {
    const id = buildCert({ name: email, email, issuer: buildCert({ name: 'Org CA', ca: true }) });
    const encrypted = createPrivateKey(id.key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'correct horse' }) as string;
    expect(encrypted).toContain('ENCRYPTED PRIVATE KEY');
    await expect(createProtector(withIdentity({ smimeCert: id.cert, smimeKey: encrypted, smimeKeyPassphrase: 'correct horse' }))).resolves.toBeDefined();
    await expect(createProtector(withIdentity({ smimeCert: id.cert, smimeKey: encrypted, smimeKeyPassphrase: 'wrong' }))).rejects.toThrow(/^identities\.client\.test\.smimeKey: does not open with smimeKeyPassphrase/);
    await expect(createProtector(withIdentity({ smimeCert: id.cert, smimeKey: encrypted }))).rejects.toThrow(/^identities\.client\.test\.smimeKey: does not open \(is it encrypted\? set smimeKeyPassphrase\)/);
    await expect(createProtector(withIdentity({ smimeCert: id.cert, smimeKey: ca.issueSmime(email).key }))).rejects.toThrow('identities.client.test.smimeKey: does not belong to smimeCert');
  });

  it('a certificate that cannot sign mail stops the start: expired, EC, SHA-1, a TLS server certificate; escrow likewise', async () => {
    const expired = ca.issueSmime(email, { expired: true });
    await expect(createProtector(withIdentity({ smimeCert: expired.cert, smimeKey: expired.key }))).rejects.toThrow(/^identities\.client\.test\.smimeCert: expired on /);
    const ec = buildCert({ name: email, email, keyType: 'ec' });
    await expect(createProtector(withIdentity({ smimeCert: ec.cert, smimeKey: ec.key }))).rejects.toThrow('identities.client.test.smimeCert: not an RSA certificate (EC (prime256v1))');
    const sha1 = buildCert({ name: email, email, hash: 'sha1' });
    await expect(createProtector(withIdentity({ smimeCert: sha1.cert, smimeKey: sha1.key }))).rejects.toThrow(/^identities\.client\.test\.smimeCert: signed with SHA-1/);
    const tls = ca.issue(['client.test']);
    await expect(createProtector(withIdentity({ smimeCert: tls.cert, smimeKey: tls.key }))).rejects.toThrow('identities.client.test.smimeCert: extended key usage lacks emailProtection');
    await expect(createProtector(validateConfig({ hostname: 'postern.test', protect: { smime: { escrowCert: ca.issueSmime('c@client.test', { expired: true }).cert } } }))).rejects.toThrow(/^protect\.smime\.escrowCert: expired on /);
    await expect(createProtector(validateConfig({ hostname: 'postern.test', protect: { smime: { escrowCert: ca.issueSmime('c@client.test', { keyUsage: 'signOnly' }).cert } } }))).rejects.toThrow('protect.smime.escrowCert: key usage does not allow key encipherment');
  });

  it('warns 30 days ahead of an expiry: at start, then daily on a timer whether or not mail is encrypted; an identity past its expiry no longer signs', async () => {
    const soon = ca.issueSmime(email); // 30 days of validity
    const escrow = buildCert({ name: 'c@client.test', email: 'c@client.test' }); // 60 days
    const rcpt = ca.issueSmime('patient@dest.test');
    const { lines, log } = logged();
    const protector = await createProtector(withIdentity({ smimeCert: soon.cert, smimeKey: soon.key }, { smime: { escrowCert: escrow.cert } }), log);
    expect(lines.filter((l) => l.event === 'keys.expiring').map((l) => [l.setting, l.daysLeft])).toEqual([['identities.client.test.smimeCert', 29]]);
    const raw = richMessage(HEADERS);
    const decrypt = (out: Buffer) => {
      const p7 = forge.pkcs7.messageFromAsn1(forge.asn1.fromDer(forge.util.decode64(out.toString('latin1').split('\r\n\r\n').slice(1).join('').replace(/\s+/g, '')))) as forge.pkcs7.PkcsEnvelopedData;
      p7.decrypt(p7.findRecipient(forge.pki.certificateFromPem(rcpt.cert))!, forge.pki.privateKeyFromPem(rcpt.key));
      return Buffer.from((p7.content as forge.util.ByteStringBuffer).getBytes(), 'binary').toString('latin1');
    };
    expect(decrypt(await protector.protect(raw, { method: 'smime', recipientKeys: [rcpt.cert], senderDomain: 'client.test' }))).toMatch(/^Content-Type: multipart\/signed;/);
    // 40 days on: the identity has expired. The message goes out encrypted but unsigned.
    const later = Date.now() + 40 * 86_400_000;
    const unsigned = decrypt(await protector.protect(raw, { method: 'smime', recipientKeys: [rcpt.cert], senderDomain: 'client.test' }, later));
    expect(unsigned).toMatch(/^Content-Type: multipart\/mixed; boundary="mix"/);
    const expiring = () => lines.filter((l) => l.event === 'keys.expiring').map((l) => [l.setting, l.expired ?? l.daysLeft]);
    expect(expiring()).toHaveLength(1); // protecting mail does not drive the warnings: the timer does
    // The gateway's daily timer (here every 20 ms, its clock 40 days on): it does not hold the process open.
    const timer = protector.expiryWatch!.start(20, () => later);
    expect(timer.hasRef()).toBe(false);
    await vi.waitFor(() => expect(expiring().length).toBeGreaterThanOrEqual(5), { timeout: 5000 });
    clearInterval(timer);
    expect(expiring().slice(0, 5)).toEqual([
      ['identities.client.test.smimeCert', 29],
      ['identities.client.test.smimeCert', true],
      ['protect.smime.escrowCert', 19],
      ['identities.client.test.smimeCert', true],
      ['protect.smime.escrowCert', 19],
    ]);
  });
});

describe('OpenPGP identity and escrow key: checked at start, watched for expiry', () => {
  const DAY = 86_400_000;
  const logged = () => {
    const lines: Record<string, unknown>[] = [];
    return { lines, log: createLogger('info', { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }) };
  };
  const withEscrow = (escrowKey: string) => createProtector(validateConfig({ hostname: 'postern.test', protect: { pgp: { escrowKey } } }));

  it('an escrow key that is expired, revoked, too weak, not a key or not there stops the start, naming protect.pgp.escrowKey; one expiring soon is warned about', async () => {
    const expired = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'c@client.test' }], date: new Date(Date.now() - 3 * DAY), keyExpirationTime: DAY / 1000, format: 'armored' });
    await expect(withEscrow(expired.publicKey)).rejects.toThrow(/^protect\.pgp\.escrowKey: expired on \d{4}-/);
    const good = await keyPair('c@client.test');
    const revoked = await revokeKey({ key: await readPrivateKey({ armoredKey: good.privateKey }), format: 'armored' });
    await expect(withEscrow(revoked.publicKey)).rejects.toThrow(/^protect\.pgp\.escrowKey: revoked$/);
    const weak = await generateKey({ type: 'rsa', rsaBits: 1024, userIDs: [{ email: 'c@client.test' }], format: 'armored', config: { minRSABits: 1024 } });
    await expect(withEscrow(weak.publicKey)).rejects.toThrow('protect.pgp.escrowKey: primary key: rsaEncryptSign key of 1024 bits (at least 2048 required)');
    await expect(withEscrow('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n')).rejects.toThrow(/^protect\.pgp\.escrowKey: not an OpenPGP public key \(/);
    await expect(withEscrow('/nonexistent/escrow.asc')).rejects.toThrow(/^protect\.pgp\.escrowKey: not a PEM block and not a readable file: cannot read \/nonexistent\/escrow\.asc \(ENOENT\)/);

    const soon = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'c@client.test' }], keyExpirationTime: (20 * DAY) / 1000, format: 'armored' });
    const { lines, log } = logged();
    await createProtector(validateConfig({ hostname: 'postern.test', protect: { pgp: { escrowKey: soon.publicKey } } }), log);
    expect(lines.filter((l) => l.event === 'keys.expiring').map((l) => [l.setting, l.daysLeft])).toEqual([['protect.pgp.escrowKey', 19]]);
  });

  it('the organisation key: expired at start stops it; expiring within 30 days is warned about; past its expiry it no longer signs', async () => {
    const rcpt = await keyPair('patient@dest.test');
    const config = (pgpKey: string) => validateConfig({ hostname: 'postern.test', identities: { 'client.test': { pgpKey } } });
    const expired = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'dr@client.test' }], date: new Date(Date.now() - 3 * DAY), keyExpirationTime: DAY / 1000, format: 'armored' });
    await expect(createProtector(config(expired.privateKey))).rejects.toThrow(/^identities\.client\.test\.pgpKey: /);

    const org = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'dr@client.test' }], keyExpirationTime: (20 * DAY) / 1000, format: 'armored' });
    const { lines, log } = logged();
    const protector = await createProtector(config(org.privateKey), log);
    expect(lines.filter((l) => l.event === 'keys.expiring').map((l) => [l.setting, l.daysLeft])).toEqual([['identities.client.test.pgpKey', 19]]);
    const signaturesOf = async (out: Buffer) => {
      const { signatures } = await decrypt({
        message: await readMessage({ armoredMessage: armoredOf(out) }),
        decryptionKeys: await readPrivateKey({ armoredKey: rcpt.privateKey }),
        verificationKeys: await readPrivateKey({ armoredKey: org.privateKey }).then((k) => k.toPublic()),
        format: 'binary',
      });
      return signatures;
    };
    const req = { method: 'pgp' as const, recipientKeys: [rcpt.publicKey], senderDomain: 'client.test' };
    const signed = await signaturesOf(await protector.protect(richMessage(HEADERS), req));
    expect(signed).toHaveLength(1);
    await expect(signed[0]!.verified).resolves.toBe(true);
    // 25 days on the key has expired: the message still goes out encrypted, without a signature.
    expect(await signaturesOf(await protector.protect(richMessage(HEADERS), req, Date.now() + 25 * DAY))).toEqual([]);
    protector.expiryWatch!.check(Date.now() + 25 * DAY);
    expect(lines.filter((l) => l.event === 'keys.expiring').at(-1)).toMatchObject({ setting: 'identities.client.test.pgpKey', expired: true });
  });
});

describe('OpenPGP: size guard', () => {
  it('refuses above protect.pgp.maxSize', async () => {
    const protector = await createProtector(validateConfig({ hostname: 'postern.test', protect: { pgp: { maxSize: '8KB' } } }));
    const rcpt = await keyPair('p@dest.test');
    await expect(protector.protect(Buffer.alloc(9000, 0x41), { method: 'pgp', recipientKeys: [rcpt.publicKey] })).rejects.toThrow(/above protect\.pgp\.maxSize \(8192\)/);
    await expect(protector.protect(richMessage(HEADERS), { method: 'pgp', recipientKeys: [rcpt.publicKey] })).resolves.toBeInstanceOf(Buffer);
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
