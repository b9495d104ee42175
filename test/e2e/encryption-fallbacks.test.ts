import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey } from 'openpgp';
import { beforeAll, describe, expect, it, vi, onTestFinished } from 'vitest';
import { importKeys } from '../../src/keys/import.js';
import { KeyStore } from '../../src/keys/store.js';
import { dkimConfig, mailauthVerify, makeDkimKey } from '../helpers/dkim.js';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { findProgram } from '../helpers/programs.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { signEntity } from '../../src/protect/smime.js';
import { SmimeTrust } from '../../src/keys/smime-trust.js';
import { freshGnupgHome } from '../helpers/gnupg.js';
import { signerFrom } from '../keys/smime-pki.js';

const FAIL_MARKER = 'X-Test-Make-Encryption-Fail: yes';

// A message carrying the marker makes OpenPGP encryption fail, as a library error would.
vi.mock('../../src/protect/pgp.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/protect/pgp.js')>();
  return { ...real, pgpProtect: (raw: Buffer, opts: Parameters<typeof real.pgpProtect>[1]) => (raw.includes(FAIL_MARKER) ? Promise.reject(new Error('simulated library failure')) : real.pgpProtect(raw, opts)) };
});

const gpg = findProgram('gpg');
const POLICY = `defaults: { methods: [smime, pgp, tls, portal], tls: may, onNoMethod: portal }
domains:
  client.test: { methods: [tls], tls: may }
  strict.test: { methods: [pgp], onNoMethod: defer }
  big.test: { methods: [smime, portal] }
  bigpgp.test: { methods: [pgp, portal] }
`;

describe('variants: shared domain keys, encryption failures, size limits, large messages', () => {
  const s = scenario();
  const ca = createTestCa('Fallbacks CA');
  const dkim = makeDkimKey('client.test', 'fb');
  let mx: TestMx;
  let gw: TestGateway;
  let partner: { publicKey: string; privateKey: string };

  beforeAll(async () => {
    mx = await s.mx();
    const policy = join(mkdtempSync(join(tmpdir(), 'postern-fallbacks-')), 'policy.yaml');
    writeFileSync(policy, POLICY);
    const route = `127.0.0.1:${mx.port}`;
    gw = await s.gateway({
      policy: { file: policy },
      smtp: { limits: { maxMessageSize: '40MB' } },
      delivery: { tls: { default: 'may' }, routes: { 'partner.test': route, 'strict.test': route, 'big.test': route, 'bigpgp.test': route, 'client.test': { nexthop: route, tls: 'none' } } },
      keys: { discovery: ['store'], smimeTrust: [ca.caFile], harvest: true },
      protect: { smime: { maxSize: '16KB' }, pgp: { maxSize: '24KB' } },
      dkim: dkimConfig([dkim]),
    });
    partner = (await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'Partner gateway', email: 'gateway@partner.test' }], format: 'armored' })) as { publicKey: string; privateKey: string };
    const store = new KeyStore(join(gw.dataDir, 'keys'));
    const strict = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'dr@strict.test' }], format: 'armored' });
    const bigPgp = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'dr@bigpgp.test' }], format: 'armored' });
    const results = [
      ...(await importKeys(store, bigPgp.publicKey, {})),
      ...(await importKeys(store, partner.publicKey, { domain: 'partner.test' })),
      ...(await importKeys(store, strict.publicKey, {})),
      ...(await importKeys(store, ca.issueSmime('dr@big.test').cert, { smimeTrust: SmimeTrust.fromPem([ca.cert]) })),
    ];
    expect(results.map((r) => r.refused)).toEqual([undefined, undefined, undefined, undefined]);
  });

  // Skipped only on a developer machine without GnuPG; under CI=true findProgram throws.
  it.skipIf(!gpg)('recipients sharing a domain key share one variant: one transaction, encrypted to that key', async () => {
    const before = mx.messages.length;
    const r = await sendMail(gw.port, { from: 'dr@client.test', to: ['a@partner.test', 'b@partner.test'], raw: testMessage({ from: 'dr@client.test', body: 'For both of you.' }) });
    expect(r.ok).toBe(true);
    await mx.waitFor(before + 1);
    const got = mx.messages.at(-1)!;
    expect(got.rcptTo.sort()).toEqual(['a@partner.test', 'b@partner.test']);
    const gnupg = freshGnupgHome();
    const { home, env } = gnupg;
    onTestFinished(() => gnupg.done());
    writeFileSync(join(home, 'k.asc'), partner.privateKey);
    writeFileSync(join(home, 'm.asc'), /-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/.exec(got.raw.toString('latin1'))![0]);
    execFileSync(gpg as string, ['--batch', '--import', join(home, 'k.asc')], { env, stdio: 'ignore' });
    expect(execFileSync(gpg as string, ['--batch', '--decrypt', join(home, 'm.asc')], { env, stdio: ['ignore', 'pipe', 'ignore'] }).toString()).toContain('For both of you.');
    expect((await mailauthVerify(got.raw, [dkim])).map((x) => x.status)).toEqual(['pass']);
    const sent = gw.events('delivery.sent').filter((l) => String(l.to).endsWith('@partner.test'));
    expect(sent.map((l) => [l.method, l.keySource])).toEqual([['pgp', 'import'], ['pgp', 'import']]);
  });

  it('encryption that fails is never replaced by clear text: portal when the decision allows it, else deferred with the reason', async () => {
    const before = mx.messages.length;
    const raw = testMessage({ from: 'dr@client.test', subject: 'Confidential', body: 'Secret body text.', extraHeaders: [FAIL_MARKER] });
    expect((await sendMail(gw.port, { from: 'dr@client.test', to: ['a@partner.test', 'dr@strict.test'], raw })).ok).toBe(true);
    const moved = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'a@partner.test' && l.method === 'portal');
    expect(String(moved.response)).toMatch(/OpenPGP encryption to [0-9A-F]{40} failed: simulated library failure/);
    const deferred = await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.to === 'dr@strict.test');
    expect(deferred).toMatchObject({ dsn: '4.7.5', category: 'protect', method: 'pgp' });
    expect(String(deferred.response)).toMatch(/failed: simulated library failure; not sent in clear$/);
    expect(gw.events('protect.failed').length).toBeGreaterThanOrEqual(2);
    await mx.waitFor(before + 1); // the portal notice to a@partner.test
    expect(mx.messages.slice(before).map((m) => m.raw.toString('latin1')).join()).not.toContain('Secret body text.');
  });

  it('S/MIME is not used above protect.smime.maxSize: the next method (the portal) is, and the log says why', async () => {
    const r = await sendMail(gw.port, { from: 'dr@client.test', to: ['dr@big.test'], raw: testMessage({ from: 'dr@client.test', body: 'x'.repeat(40_000) }) });
    expect(r.ok).toBe(true);
    const sent = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'dr@big.test');
    expect(sent).toMatchObject({ method: 'portal' });
    expect(gw.events('keys.skipped').find((l) => l.address === 'dr@big.test')?.reason).toMatch(/above protect\.smime\.maxSize \(16384\)/);
  });

  it('OpenPGP is not used above protect.pgp.maxSize either: the portal is, and the log says why', async () => {
    const r = await sendMail(gw.port, { from: 'dr@client.test', to: ['dr@bigpgp.test'], raw: testMessage({ from: 'dr@client.test', body: 'x'.repeat(40_000) }) });
    expect(r.ok).toBe(true);
    const sent = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'dr@bigpgp.test');
    expect(sent).toMatchObject({ method: 'portal' });
    expect(gw.events('keys.skipped').find((l) => l.address === 'dr@bigpgp.test')).toMatchObject({ kind: 'pgp', reason: expect.stringMatching(/above protect\.pgp\.maxSize \(24576\)/) });
    // A small message to the same recipient is encrypted.
    expect((await sendMail(gw.port, { from: 'dr@client.test', to: ['dr@bigpgp.test'], raw: testMessage({ from: 'dr@client.test', body: 'small' }) })).ok).toBe(true);
    await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'dr@bigpgp.test' && l.method === 'pgp');
  });

  it('keys.harvest: the certificate of an S/MIME-signed message passing through is used for mail to its owner', async () => {
    const colleague = ca.issueSmime('colleague@big.test');
    const entity = Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\nSigned by a colleague.\r\n');
    const signed = Buffer.concat([Buffer.from('From: colleague@big.test\r\nTo: dr@client.test\r\nSubject: signed\r\nMIME-Version: 1.0\r\n'), signEntity(entity, signerFrom(colleague))]);
    expect((await sendMail(gw.port, { from: 'colleague@big.test', to: ['dr@client.test'], raw: signed })).ok).toBe(true);
    const harvested = await gw.waitForLog((l) => l.event === 'keys.harvested');
    expect(harvested).toMatchObject({ address: 'colleague@big.test' });
    const r = await sendMail(gw.port, { from: 'dr@client.test', to: ['colleague@big.test'], raw: testMessage({ from: 'dr@client.test', to: 'colleague@big.test', body: 'Now encrypted to you.' }) });
    expect(r.ok).toBe(true);
    const sent = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'colleague@big.test');
    expect(sent).toMatchObject({ method: 'smime', keySource: 'harvest', keyId: harvested.keyId });
  });

  it('a 25 MB message (its own spool file, read as a stream to sign and to send) arrives with a signature that verifies', async () => {
    // A large mail is an attachment: 25 MB of plain text would not be relayed as it is (text
    // past detectors.maxScanBytes counts as PHI found and goes to the portal).
    const line = 'VHdlbnR5LWZpdmUgbWVnYWJ5dGVzIHRoYXQgREtJTSBoYXNoZXMgYXMgdGhleSBzdHJlYW0gcGFzdC4K\r\n';
    const attachment = line.repeat(Math.ceil((25 * 1024 * 1024) / line.length));
    const raw = Buffer.from(
      'From: dr@client.test\r\nTo: archive@client.test\r\nSubject: scan\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b25"\r\n\r\n' +
        '--b25\r\nContent-Type: text/plain\r\n\r\nThe scan is attached.\r\n' +
        `--b25\r\nContent-Type: application/pdf; name="scan.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}--b25--\r\n`,
    );
    expect((await sendMail(gw.port, { from: 'dr@client.test', to: ['archive@client.test'], raw })).ok).toBe(true);
    await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'archive@client.test', 60_000);
    const got = mx.messages.find((m) => m.rcptTo.includes('archive@client.test'))!;
    expect(got.raw.length).toBeGreaterThan(25 * 1024 * 1024);
    expect((await mailauthVerify(got.raw, [dkim])).map((x) => x.status)).toEqual(['pass']);
  });
});
