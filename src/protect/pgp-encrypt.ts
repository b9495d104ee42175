import { randomBytes } from 'node:crypto';
import { createMessage, encrypt, encryptSessionKey, generateSessionKey, type PrivateKey, type PublicKey, type SessionKey } from 'openpgp';

export interface EncryptTo {
  recipients: PublicKey[];
  /** The escrow key and the date to encrypt to it as of (pgp-escrow.ts). */
  escrow?: { key: PublicKey; date: Date } | undefined;
  signingKey?: PrivateKey | undefined;
}

/**
 * The entity encrypted (and signed, with a signing key) to the recipients and the escrow
 * key, as one OpenPGP message (binary). The escrow's session-key packet is made on its
 * own, as of the escrow's date, and put in front of the recipients' message: an OpenPGP
 * message is its session-key packets followed by the encrypted data (RFC 9580 §10.3), so
 * both open the same data with the same session key. openpgp.encrypt checks every key at
 * one date, and refuses an escrow key that has expired.
 */
export async function encryptEntity(entity: Buffer, to: EncryptTo): Promise<Uint8Array> {
  const sessionKey = to.escrow ? await sharedSessionKey(to.recipients, to.escrow.key, to.escrow.date) : undefined;
  const message = (await encrypt({
    message: await createMessage({ binary: new Uint8Array(entity.buffer, entity.byteOffset, entity.byteLength) }),
    encryptionKeys: to.recipients,
    ...(sessionKey ? { sessionKey } : {}),
    ...(to.signingKey ? { signingKeys: to.signingKey } : {}),
    format: 'binary',
  })) as Uint8Array;
  if (!to.escrow || !sessionKey) return message;
  const escrowPacket = await encryptSessionKey({ ...sessionKey, encryptionKeys: to.escrow.key, date: to.escrow.date, format: 'binary' });
  return Buffer.concat([escrowPacket, message]);
}

/**
 * One session key for the recipients (their keys as of now) and the escrow key (as of its
 * date). Each side's cipher is what openpgp picks for its keys; when the two differ, the
 * cipher every side must be able to open is used: AES-128 with OCB when both take SEIPDv2
 * (RFC 9580 §9.3, §9.6), else AES-128 in SEIPDv1, which openpgp also falls back to and
 * GnuPG 2.2 reads.
 */
async function sharedSessionKey(recipients: PublicKey[], escrow: PublicKey, date: Date): Promise<SessionKey> {
  const [theirs, escrows] = await Promise.all([generateSessionKey({ encryptionKeys: recipients }), generateSessionKey({ encryptionKeys: escrow, date })]);
  if (theirs.algorithm === escrows.algorithm && theirs.aeadAlgorithm === escrows.aeadAlgorithm) return theirs;
  const data = new Uint8Array(randomBytes(16));
  return theirs.aeadAlgorithm && escrows.aeadAlgorithm ? { data, algorithm: 'aes128', aeadAlgorithm: 'ocb' } : { data, algorithm: 'aes128' };
}
