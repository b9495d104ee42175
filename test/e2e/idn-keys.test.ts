import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { generateKey } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { importKeys } from '../../src/keys/import.js';
import { KeyStore } from '../../src/keys/store.js';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { findProgram } from '../helpers/programs.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { gpgDecryptor } from '../interop/gpg-decrypt.js';

const gpg = findProgram('gpg');
/** Only OpenPGP will do: a recipient whose key is not found is held, never sent in clear. */
const POLICY = 'defaults: { methods: [pgp], tls: may, onNoMethod: defer }\nrules: []\n';

type KeyPair = { publicKey: string; privateKey: string };
const newKey = (email: string) => generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'Patient', email }], format: 'armored' }) as unknown as Promise<KeyPair>;

/**
 * Recipients at internationalised domains and the OpenPGP keys they have. smtp-server
 * hands every envelope domain over as U-labels, even when the client sent A-labels, while
 * a key's user ID may name either form: the key store must find the key whichever way
 * each side spells the domain, or the recipient is held (or, under a policy that allows
 * it, sent over TLS) although a key is there.
 */
describe.skipIf(!gpg)('OpenPGP keys for addresses at IDN domains, end to end', () => {
  const s = scenario();
  let gw: TestGateway;
  let mx: TestMx;
  let ascii: KeyPair;
  let unicode: KeyPair;

  beforeAll(async () => {
    // One key names the domain in A-labels, the other in U-labels.
    [ascii, unicode] = await Promise.all([newKey('pat@xn--bcher-kva.example'), newKey('kim@müller.example')]);
    mx = await s.mx();
    const dir = mkdtempSync(join(tmpdir(), 'postern-idn-keys-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, POLICY);
    gw = await s.gateway({ policy: { file: policy }, delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } });
    const store = new KeyStore(join(gw.dataDir, 'keys'));
    await store.open();
    for (const k of [ascii, unicode]) expect((await importKeys(store, k.publicKey, {}))[0]?.refused).toBeUndefined();
  });

  const cases = [
    { what: 'key in A-labels (xn--), recipient written in Unicode', rcpt: 'pat@bücher.example', key: () => ascii },
    { what: 'key in A-labels (xn--), recipient written in A-labels', rcpt: 'pat@xn--bcher-kva.example', key: () => ascii },
    { what: 'key in Unicode, recipient written in A-labels (xn--)', rcpt: 'kim@xn--mller-kva.example', key: () => unicode },
    { what: 'key in Unicode, recipient written in Unicode, local part in capitals', rcpt: 'KIM@müller.example', key: () => unicode },
  ];

  for (const c of cases) {
    it(`${c.what}: the message is encrypted to the key, and gpg decrypts it`, async () => {
      const subject = `IDN ${c.rcpt}`;
      const before = mx.messages.length;
      const sent = await sendMail(gw.port, { from: 'dr@client.test', to: [c.rcpt], raw: testMessage({ from: 'dr@client.test', subject, body: `Results for ${c.rcpt}` }) });
      expect(sent.ok).toBe(true);
      const decision = await gw.waitForLog((l) => l.event === 'policy.decision' && l.queueId === sent.queueId);
      expect({ method: decision.method, reasons: decision.reasons }).toMatchObject({ method: 'pgp' });
      await mx.waitFor(before + 1);
      const got = mx.messages.at(-1)!;
      const outer = await simpleParser(got.raw);
      expect(outer.headers.get('content-type')).toMatchObject({ value: 'multipart/encrypted' });
      expect(got.raw.toString()).not.toContain('Results for');
      const inner = await simpleParser(gpgDecryptor(gpg as string, [c.key().privateKey])(outer.attachments[1]!.content.toString()));
      expect(inner.text?.trim()).toBe(`Results for ${c.rcpt}`);
    });
  }
});
