import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { simpleParser } from 'mailparser';
import { generateKey, readKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importKeys } from '../../src/keys/import.js';
import { KeyStore } from '../../src/keys/store.js';
import { splitEntity } from '../../src/protect/mime-entity.js';
import { SmimeTrust } from '../../src/keys/smime-trust.js';
import { dkimConfig, mailauthVerify, makeDkimKey, opendkimPrograms, opendkimVerify } from '../helpers/dkim.js';
import { TestDns } from '../helpers/dns-server.js';
import type { TestGateway } from '../helpers/gateway.js';
import type { ReceivedMessage, TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { ATTACHMENT, richMessage } from '../helpers/sample-message.js';
import { pemFile, threeTier } from '../keys/smime-pki.js';
import { findProgram } from '../helpers/programs.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail } from '../helpers/smtp-client.js';
import { freshGnupgHome } from '../helpers/gnupg.js';

const gpg = findProgram('gpg');
const openssl = findProgram('openssl');
const opendkim = opendkimPrograms();

const ORIGINAL = richMessage([
  'From: "Dr. A" <dr@client.test>',
  'To: pgp@dest.test, smime@dest.test, plain@dest.test, patient@consumer.test',
  'Subject: Lab results',
  'Date: Tue, 01 Dec 2026 10:00:00 +0000',
  'Message-ID: <variants-1@client.test>',
]);
const POLICY = `consumerDomains: [consumer.test]
defaults: { methods: [smime, pgp, tls, portal], tls: verify, onNoMethod: portal }
domains:
  client.test: { methods: [tls], tls: may }
rules:
  - id: consumer-mail
    match: { consumerDomain: true }
    action: { methods: [smime, pgp, portal] }
`;

const work = () => mkdtempSync(join(tmpdir(), 'postern-variants-'));

/** gpg --decrypt with only `secretKey` in a fresh keyring; status lines on stderr. */
function gpgDecrypt(armoredMessage: string, secretKey: string, publicKeys: string[] = []): { plain: Buffer; status: string } {
  const gnupg = freshGnupgHome();
  const { home, env } = gnupg;
  try {
    writeFileSync(join(home, 'k.asc'), [secretKey, ...publicKeys].join('\n'));
    writeFileSync(join(home, 'm.asc'), armoredMessage);
    execFileSync(gpg as string, ['--batch', '--import', join(home, 'k.asc')], { env, stdio: 'ignore' });
    const plain = execFileSync(gpg as string, ['--batch', '--decrypt', join(home, 'm.asc')], { env, stdio: ['ignore', 'pipe', 'ignore'] });
    const status = execFileSync(gpg as string, ['--batch', '--status-fd', '1', '--decrypt', '--output', '/dev/null', join(home, 'm.asc')], { env, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    return { plain, status };
  } finally {
    gnupg.done();
  }
}

// Skipped only on a developer machine without GnuPG or OpenSSL; under CI=true findProgram throws.
describe.skipIf(!gpg || !openssl)('one message, three protections: PGP, S/MIME, TLS (and a portal notice)', () => {
  const s = scenario();
  const ca = createTestCa('Postern Variants CA');
  const dkimClient = makeDkimKey('client.test', 'sel1');
  const dkimGateway = makeDkimKey('postern.test', 'notices', 'ed25519-sha256');
  let dns: TestDns;
  let mx: TestMx;
  let senderMx: TestMx;
  let gw: TestGateway;
  let keys: {
    recipient: { publicKey: string; privateKey: string };
    org: { publicKey: string; privateKey: string };
    escrow: { publicKey: string; privateKey: string };
  };
  // Both S/MIME certificates come from intermediates, as commercial ones do; only the roots are trusted.
  const rcptPki = threeTier('smime@dest.test');
  const smimeRcpt = rcptPki.leaf;
  const orgPki = threeTier('dr@client.test', { rootKey: 'ec' });
  const smimeOrg = orgPki.leaf;

  beforeAll(async () => {
    const gen = (email: string, type: 'rsa' | 'ecc') =>
      generateKey({ ...(type === 'rsa' ? { type, rsaBits: 3072 } : { type, curve: 'curve25519Legacy' }), userIDs: [{ email }], format: 'armored' } as Parameters<typeof generateKey>[0]) as unknown as Promise<{ publicKey: string; privateKey: string }>;
    const [recipient, org, escrow] = await Promise.all([gen('pgp@dest.test', 'rsa'), gen('dr@client.test', 'ecc'), gen('compliance@client.test', 'ecc')]);
    keys = { recipient, org, escrow };
    mx = await s.mx({ tls: ca.issue(['mx.dest.test']) });
    senderMx = await s.mx({ tls: ca.issue(['127.0.0.1']) }); // reports go over verified TLS (rule dsn)
    dns = await new TestDns({ 'mx.dest.test': { A: ['127.0.0.1'] } }).start();
    const policy = join(work(), 'policy.yaml');
    writeFileSync(policy, POLICY);
    gw = await s.gateway({
      policy: { file: policy },
      delivery: {
        dns: { servers: [dns.server] },
        tls: { default: 'verify', trust: [ca.caFile] },
        routes: { 'dest.test': `mx.dest.test:${mx.port}`, 'consumer.test': `mx.dest.test:${mx.port}`, 'client.test': { nexthop: `127.0.0.1:${senderMx.port}`, tls: 'none' } },
      },
      keys: { discovery: ['store'], smimeTrust: [pemFile('roots.pem', rcptPki.root.cert, ca.cert)] },
      identities: { 'client.test': { pgpKey: org.privateKey, smimeCert: smimeOrg.cert + orgPki.intermediate.cert, smimeKey: smimeOrg.key } },
      protect: { pgp: { escrowKey: escrow.publicKey } },
      dkim: dkimConfig([dkimClient, dkimGateway]),
    });
    const store = new KeyStore(join(gw.dataDir, 'keys'));
    const imported = await importKeys(store, `${recipient.publicKey}\n${smimeRcpt.cert}${rcptPki.intermediate.cert}`, { smimeTrust: SmimeTrust.fromPem([rcptPki.root.cert]) });
    expect(imported.map((r) => r.refused)).toEqual([undefined, undefined]);
  });
  afterAll(() => dns.stop());

  it('each recipient gets its own variant, correct and DKIM-signed at the receiving MX', async () => {
    const r = await sendMail(gw.port, { from: 'dr@client.test', to: ['pgp@dest.test', 'smime@dest.test', 'plain@dest.test', 'patient@consumer.test'], raw: ORIGINAL });
    expect(r.ok).toBe(true);
    await mx.waitFor(4);
    const to = (rcpt: string) => mx.messages.filter((m) => m.rcptTo.includes(rcpt));
    for (const rcpt of ['pgp@dest.test', 'smime@dest.test', 'plain@dest.test', 'patient@consumer.test']) expect(to(rcpt)).toHaveLength(1);
    // One transaction per variant, each to one recipient; all over verified TLS.
    expect(mx.messages.map((m) => m.rcptTo.length)).toEqual([1, 1, 1, 1]);
    expect(mx.messages.every((m) => m.secure)).toBe(true);
    const entity = splitEntity(ORIGINAL).entity;

    // PGP: decrypts with the recipient's key to the original entity; signed by the organisation; escrow can read it.
    const pgpRaw = to('pgp@dest.test')[0]!.raw.toString('latin1');
    expect(pgpRaw).toMatch(/^Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted";/m);
    expect(pgpRaw).not.toContain('The results are in');
    const armored = /-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/.exec(pgpRaw)![0];
    const forRecipient = gpgDecrypt(armored, keys.recipient.privateKey, [keys.org.publicKey]);
    expect(forRecipient.plain.equals(entity)).toBe(true);
    const read = await simpleParser(forRecipient.plain);
    expect([read.text?.trim(), String(read.html).includes('<b>attachment</b>'), read.attachments[0]?.content.equals(ATTACHMENT)]).toEqual(['The results are in the attachment.', true, true]);
    expect(forRecipient.status).toMatch(/\[GNUPG:\] GOODSIG [0-9A-F]+ <dr@client\.test>/);
    expect(gpgDecrypt(armored, keys.escrow.privateKey, [keys.org.publicKey]).plain.equals(entity)).toBe(true);

    // S/MIME: openssl decrypts with the recipient's key, verifies the organisation's signature.
    const dir = work();
    const smimeMsg = to('smime@dest.test')[0]!.raw;
    expect(smimeMsg.toString('latin1')).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
    writeFileSync(join(dir, 'smime.eml'), smimeMsg);
    writeFileSync(join(dir, 'rcpt.pem'), smimeRcpt.cert);
    writeFileSync(join(dir, 'rcpt.key'), smimeRcpt.key);
    const signedEntity = execFileSync(openssl as string, ['cms', '-decrypt', '-in', join(dir, 'smime.eml'), '-recip', join(dir, 'rcpt.pem'), '-inkey', join(dir, 'rcpt.key')]);
    writeFileSync(join(dir, 'signed.eml'), signedEntity);
    // The organisation's signature verifies against its (EC) root alone: the intermediate travels with it.
    const verified = execFileSync(openssl as string, ['cms', '-verify', '-in', join(dir, 'signed.eml'), '-CAfile', pemFile('org-root.pem', orgPki.root.cert)], { stdio: ['ignore', 'pipe', 'pipe'] });
    expect(verified.equals(entity)).toBe(true);
    const shown = await simpleParser(verified);
    expect([shown.text?.trim(), shown.attachments[0]?.content.equals(ATTACHMENT)]).toEqual(['The results are in the attachment.', true]);

    // TLS: the message itself, byte for byte after the headers Postern adds at the top.
    const plain = to('plain@dest.test')[0]!.raw;
    expect(plain.subarray(plain.length - ORIGINAL.length).equals(ORIGINAL)).toBe(true);

    // The portal notice: a link, never the content.
    const notice = to('patient@consumer.test')[0]!.raw.toString('latin1');
    expect(notice).toMatch(/^Subject: Secure message from /m);
    expect(notice).not.toContain('The results are in');

    // DKIM: every variant verifies at the receiving side (d=client.test; the notice d=postern.test).
    const dkim = async (m: ReceivedMessage) => (await mailauthVerify(m.raw, [dkimClient, dkimGateway])).map((x) => `${x.status} ${x.domain} ${x.selector}`);
    for (const rcpt of ['pgp@dest.test', 'smime@dest.test', 'plain@dest.test']) expect(await dkim(to(rcpt)[0]!)).toEqual(['pass client.test sel1']);
    expect(await dkim(to('patient@consumer.test')[0]!)).toEqual(['pass postern.test notices']);
    // And by OpenDKIM, where it is installed (CI=true: it must be).
    if (opendkim) for (const m of mx.messages) expect(opendkimVerify(opendkim, m.raw, [dkimClient, dkimGateway])).toEqual({ code: 0, stderr: '' });

    // The log says how each recipient was sent, with which key, from where.
    const sent = (rcpt: string) => gw.events('delivery.sent').find((l) => l.to === rcpt);
    const pgpFpr = (await readKey({ armoredKey: keys.recipient.publicKey })).getFingerprint().toUpperCase();
    expect(sent('pgp@dest.test')).toMatchObject({ method: 'pgp', rule: 'default', keyId: pgpFpr, keySource: 'import', tls: { verified: true } });
    expect(sent('smime@dest.test')).toMatchObject({ method: 'smime', rule: 'default', keySource: 'import' });
    expect(String(sent('smime@dest.test')?.keyId)).toMatch(/^[0-9A-F]{64}$/);
    expect(sent('plain@dest.test')).toMatchObject({ method: 'tls' });
    expect(sent('plain@dest.test')?.keyId).toBeUndefined();
    expect(sent('patient@consumer.test')).toMatchObject({ method: 'portal', rule: 'consumer-mail' });
    expect(gw.events('dkim.signed').map((l) => `${String(l.domain)}/${String(l.selector)}`).sort()).toEqual(['client.test/sel1', 'client.test/sel1', 'client.test/sel1', 'postern.test/notices']);
    expect(JSON.stringify(gw.logs)).not.toMatch(/PRIVATE KEY|The results are in/);
  });

  it('a bounce report is DKIM-signed too', async () => {
    const before = senderMx.messages.length;
    const r = await sendMail(gw.port, { from: 'dr@client.test', to: ['nobody@unknown.invalid'], raw: ORIGINAL });
    expect(r.ok).toBe(true);
    await senderMx.waitFor(before + 1);
    const report = senderMx.messages.at(-1)!;
    expect(report.raw.toString('latin1')).toMatch(/^Content-Type: multipart\/report; report-type=delivery-status/m);
    expect((await mailauthVerify(report.raw, [dkimGateway])).map((x) => `${x.status} ${x.domain}`)).toEqual(['pass postern.test']);
  });
});
