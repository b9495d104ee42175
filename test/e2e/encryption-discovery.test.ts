import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { generateKey, readKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wkdHash } from '../../src/keys/wkd.js';
import { runCli as cli } from '../helpers/cli.js';
import { TestDns } from '../helpers/dns-server.js';
import { testConfigInput, writeConfigFile, type TestGateway } from '../helpers/gateway.js';
import { freshGnupgHome } from '../helpers/gnupg.js';
import { TestHttps } from '../helpers/https-server.js';
import type { TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { findProgram } from '../helpers/programs.js';
import { ATTACHMENT, richMessage } from '../helpers/sample-message.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail } from '../helpers/smtp-client.js';

const gpg = findProgram('gpg');
const POLICY = `defaults: { methods: [pgp], tls: may, onNoMethod: defer }
domains:
  client.test: { methods: [tls], tls: may }
`;

type KeyPair = { publicKey: string; privateKey: string };
const newKey = (email: string) => generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email }], format: 'armored' }) as unknown as Promise<KeyPair>;

/** gpg --decrypt with only `secretKey` in a fresh keyring. */
function gpgDecrypt(armored: string, secretKey: string): Buffer {
  const gnupg = freshGnupgHome();
  try {
    writeFileSync(join(gnupg.home, 'k.asc'), secretKey);
    writeFileSync(join(gnupg.home, 'm.asc'), armored);
    execFileSync(gpg as string, ['--batch', '--import', join(gnupg.home, 'k.asc')], { env: gnupg.env, stdio: 'ignore' });
    return execFileSync(gpg as string, ['--batch', '--decrypt', join(gnupg.home, 'm.asc')], { env: gnupg.env, stdio: ['ignore', 'pipe', 'ignore'] });
  } finally {
    gnupg.done();
  }
}

// Skipped only on a developer machine without GnuPG; under CI=true findProgram throws.
describe.skipIf(!gpg)('key discovery end to end: a gateway finds recipients\' keys by WKD and on a keyserver', () => {
  const s = scenario();
  const ca = createTestCa('Postern Discovery CA');
  let https: TestHttps;
  let dns: TestDns;
  let mx: TestMx;
  let gw: TestGateway;
  let configFile: string;
  let wkdKey: KeyPair;
  let vksKey: KeyPair;

  beforeAll(async () => {
    [wkdKey, vksKey] = await Promise.all([newKey('wkd@dest.test'), newKey('vks@dest.test')]);
    https = await new TestHttps(ca.issue(['openpgpkey.dest.test', 'dest.test', 'keys.test'])).start();
    https.routes.set(`/.well-known/openpgpkey/dest.test/hu/${wkdHash('wkd')}?l=wkd`, { body: Buffer.from((await readKey({ armoredKey: wkdKey.publicKey })).write()), contentType: 'application/octet-stream' });
    https.routes.set(`/vks/v1/by-email/${encodeURIComponent('vks@dest.test')}`, { body: vksKey.publicKey, contentType: 'application/pgp-keys' });
    dns = await new TestDns({ 'openpgpkey.dest.test': { A: ['127.0.0.1'] }, 'dest.test': { A: ['127.0.0.1'] }, 'keys.test': { A: ['127.0.0.1'] } }).start();
    mx = await s.mx();
    const dir = mkdtempSync(join(tmpdir(), 'postern-discovery-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, POLICY);
    const overrides = {
      policy: { file: policy },
      delivery: { dns: { servers: [dns.server] }, tls: { default: 'may', trust: [ca.caFile] }, routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } },
      keys: { discovery: ['store', 'wkd', 'keyserver'], wkd: { port: https.port, timeout: '5s' }, keyserver: { url: `https://keys.test:${https.port}`, timeout: '5s' } },
    };
    gw = await s.gateway(overrides);
    // The same config as a file, for `postern keys list` against the gateway's store.
    configFile = writeConfigFile(dir, testConfigInput(gw.dataDir, overrides));
  });
  afterAll(async () => {
    await https?.stop();
    await dns?.stop();
  });

  it('each recipient gets PGP/MIME encrypted to the discovered key, which gpg decrypts; `postern keys list` shows the keys and where they came from', async () => {
    const original = richMessage(['From: dr@client.test', 'To: wkd@dest.test, vks@dest.test', 'Subject: Discovered', 'Message-ID: <disc-1@client.test>']);
    expect((await sendMail(gw.port, { from: 'dr@client.test', to: ['wkd@dest.test', 'vks@dest.test'], raw: original })).ok).toBe(true);
    await mx.waitFor(2);
    for (const [rcpt, key, source] of [['wkd@dest.test', wkdKey, 'wkd'], ['vks@dest.test', vksKey, 'keyserver']] as const) {
      const got = mx.messages.find((m) => m.rcptTo.includes(rcpt))!;
      expect(got.rcptTo).toEqual([rcpt]);
      const outer = await simpleParser(got.raw);
      expect(outer.headers.get('content-type')).toMatchObject({ value: 'multipart/encrypted', params: { protocol: 'application/pgp-encrypted' } });
      const inner = await simpleParser(gpgDecrypt(outer.attachments[1]!.content.toString(), key.privateKey));
      expect(inner.text?.trim()).toBe('The results are in the attachment.');
      expect(inner.attachments[0]!.content.equals(ATTACHMENT)).toBe(true);
      const fpr = (await readKey({ armoredKey: key.publicKey })).getFingerprint().toUpperCase();
      expect(gw.events('delivery.sent').find((l) => l.to === rcpt)).toMatchObject({ method: 'pgp', keyId: fpr, keySource: source });
    }
    expect(https.requests.map((r) => r.replace(/:\d+/, '').split('?')[0])).toEqual(
      expect.arrayContaining([`openpgpkey.dest.test/.well-known/openpgpkey/dest.test/hu/${wkdHash('wkd')}`, `keys.test/vks/v1/by-email/${encodeURIComponent('vks@dest.test')}`]),
    );

    const list = await cli(['keys', 'list', '-c', configFile, '--json']);
    expect(list.code).toBe(0);
    const rows = (JSON.parse(list.stdout) as { addresses: string[]; source: string; from?: string; usable: boolean }[]).map((r) => [r.addresses.join(), r.source, r.from, r.usable]);
    expect(rows.sort()).toEqual([
      ['vks@dest.test', 'keyserver', `https://keys.test:${https.port}`, true],
      ['wkd@dest.test', 'wkd', 'wkd:advanced', true],
    ]);

    // The next message uses the stored keys: no new request.
    const asked = https.requests.length;
    expect((await sendMail(gw.port, { from: 'dr@client.test', to: ['wkd@dest.test'], raw: original })).ok).toBe(true);
    await mx.waitFor(3);
    expect(https.requests.length).toBe(asked);
  });
});
