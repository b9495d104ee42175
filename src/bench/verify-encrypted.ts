import { randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { decrypt, readMessage, readPrivateKey } from 'openpgp';
import type { Capture } from './capture.js';
import type { KeyPair } from './keys.js';
import { SmtpLine } from './source.js';

/** The address the check is sent to; its domain is routed to the capture server. */
export const CHECK_ADDRESS = 'probe@verify.bench.test';

/**
 * Sends one message through an encrypting setup and checks what reached the capture
 * server: the expected MIME structure, no trace of the plain text, and, decrypted with
 * the recipient's private key, the original marker. Throws otherwise: a benchmark of a
 * relay that silently sent clear text would be a lie.
 */
export async function verifyEncrypts(name: string, port: number, method: 'pgp' | 'smime', recipient: KeyPair, capture: Capture, size: number): Promise<void> {
  const marker = `postern-bench-check-${randomBytes(12).toString('hex')}`;
  const filler = `${'x'.repeat(76)}\r\n`.repeat(Math.max(1, Math.ceil(size / 78)));
  const c = await SmtpLine.open(port);
  const replies = [await c.cmd('EHLO check.bench.test'), await c.cmd('MAIL FROM:<sender@bench.test>'), await c.cmd(`RCPT TO:<${CHECK_ADDRESS}>`), await c.cmd('DATA')];
  replies.push(await c.cmd(`From: <sender@bench.test>\r\nTo: <${CHECK_ADDRESS}>\r\nSubject: bench encryption check\r\n\r\n${marker}\r\n${filler}.`));
  await c.cmd('QUIT');
  c.close();
  const refused = replies.find((r) => !/^[23]\d\d/.test(r));
  if (refused) throw new Error(`${name}: the encryption check message was refused: ${refused.trim()}`);
  const raw = await capture.next(30_000).catch((err: Error) => {
    throw new Error(`${name}: ${err.message} (an encrypting setup defers what it cannot encrypt: is the key in its store?)`);
  });
  const text = raw.toString('latin1');
  const fail = (why: string) => new Error(`${name} did not deliver ${method === 'pgp' ? 'OpenPGP' : 'S/MIME'}-encrypted mail: ${why}`);
  if (text.includes(marker)) throw fail('the plain text reached the next hop');
  let plain: string | undefined;
  try {
    plain = method === 'pgp' ? await openPgp(text, recipient.privateKey) : openSmime(text, recipient);
  } catch (err) {
    throw fail(`it does not decrypt with the recipient's key: ${(err as Error).message}`);
  }
  if (plain === undefined) throw fail(`no ${method === 'pgp' ? 'multipart/encrypted OpenPGP' : 'application/pkcs7-mime enveloped-data'} part in:\n${text.slice(0, 600)}`);
  if (!plain.includes(marker)) throw fail('the decrypted content is not the message sent');
}

async function openPgp(text: string, privateKey: string): Promise<string | undefined> {
  if (!/^Content-Type:\s*multipart\/encrypted;[^]*?application\/pgp-encrypted/im.test(text)) return undefined;
  const armored = /-----BEGIN PGP MESSAGE-----[^]*?-----END PGP MESSAGE-----/.exec(text)?.[0];
  if (!armored) return undefined;
  const { data } = await decrypt({ message: await readMessage({ armoredMessage: armored }), decryptionKeys: await readPrivateKey({ armoredKey: privateKey }), format: 'binary' });
  return Buffer.from(data as Uint8Array).toString('latin1');
}

function openSmime(text: string, recipient: KeyPair): string | undefined {
  if (!/^Content-Type:\s*application\/pkcs7-mime;\s*smime-type=enveloped-data/im.test(text)) return undefined;
  const body = text.slice(text.indexOf('\r\n\r\n') + 4).replace(/\s+/g, '');
  const p7 = forge.pkcs7.messageFromAsn1(forge.asn1.fromDer(forge.util.decode64(body))) as forge.pkcs7.PkcsEnvelopedData;
  const cert = forge.pki.certificateFromPem(recipient.publicKey);
  const who = p7.findRecipient(cert);
  if (!who) return undefined;
  p7.decrypt(who, forge.pki.privateKeyFromPem(recipient.privateKey) as forge.pki.rsa.PrivateKey);
  const content = p7.content;
  return typeof content === 'string' ? content : content?.getBytes();
}
