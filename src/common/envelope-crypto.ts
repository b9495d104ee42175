import { createCipheriv, createDecipheriv } from 'node:crypto';
import { secureRandomBytes } from './random.js';

/** A master key (key-encryption key): 32 bytes, with an id stored beside what it wraps. */
export interface MasterKey {
  id: string;
  key: Buffer;
}

/** A data key wrapped by a master key: what crypto-shredding destroys. */
export interface WrappedKey {
  keyId: string;
  /** AES-256-GCM(master, dataKey): iv | tag | ciphertext, base64. */
  wrappedKey: string;
}

/** A wrapped data key and the parameters of the data it encrypts. */
export interface Sealed extends WrappedKey {
  iv: string;
  tag: string;
}

export function gcmEncrypt(key: Buffer, plaintext: Buffer, aad?: Buffer): { iv: Buffer; tag: Buffer; ciphertext: Buffer } {
  const iv = secureRandomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  if (aad) cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), ciphertext };
}

export function gcmDecrypt(key: Buffer, iv: Buffer, tag: Buffer, ciphertext: Buffer, aad?: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  if (aad) decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

/**
 * Envelope encryption: each item gets its own AES-256-GCM data key, wrapped by the
 * current master key. The item id is bound in as associated data, so a ciphertext
 * cannot be swapped onto another item. Rotation re-wraps data keys only; destroying
 * the wrapped key destroys the content (crypto-shredding).
 */
export function seal(plaintext: Buffer, master: MasterKey, itemId: string): { sealed: Sealed; ciphertext: Buffer } {
  const dataKey = secureRandomBytes(32);
  const body = gcmEncrypt(dataKey, plaintext, Buffer.from(itemId));
  const wrapped = wrapDataKey(dataKey, master, itemId);
  dataKey.fill(0);
  return { sealed: { ...wrapped, iv: body.iv.toString('base64'), tag: body.tag.toString('base64') }, ciphertext: body.ciphertext };
}

export function unseal(sealed: Sealed, ciphertext: Buffer, masters: MasterKey[], itemId: string): Buffer {
  const dataKey = unwrapDataKey(sealed, masters, itemId);
  try {
    return gcmDecrypt(dataKey, Buffer.from(sealed.iv, 'base64'), Buffer.from(sealed.tag, 'base64'), ciphertext, Buffer.from(itemId));
  } finally {
    dataKey.fill(0);
  }
}

/** The same data key, wrapped by another master key (rotation). */
export function rewrap<T extends WrappedKey>(sealed: T, masters: MasterKey[], to: MasterKey, itemId: string): T {
  if (sealed.keyId === to.id) return sealed;
  const dataKey = unwrapDataKey(sealed, masters, itemId);
  const wrapped = wrapDataKey(dataKey, to, itemId);
  dataKey.fill(0);
  return { ...sealed, ...wrapped };
}

export function wrapDataKey(dataKey: Buffer, master: MasterKey, itemId: string): WrappedKey {
  const w = gcmEncrypt(master.key, dataKey, Buffer.from(itemId));
  return { keyId: master.id, wrappedKey: Buffer.concat([w.iv, w.tag, w.ciphertext]).toString('base64') };
}

export function unwrapDataKey(sealed: WrappedKey, masters: MasterKey[], itemId: string): Buffer {
  // Ids are unique (the config refuses a repeated one): the key with the stored id is the one that wrapped it.
  const master = masters.find((m) => m.id === sealed.keyId);
  if (!master) throw new Error(`master key ${sealed.keyId} is not configured (it is needed to read this item)`);
  const w = Buffer.from(sealed.wrappedKey, 'base64');
  return gcmDecrypt(master.key, w.subarray(0, 12), w.subarray(12, 28), w.subarray(28), Buffer.from(itemId));
}

/** Parses "<base64 of 32 bytes>" or "base64:<...>" or "hex:<...>" key material. */
export function parseKeyMaterial(text: string): Buffer | undefined {
  const t = text.trim();
  const key = t.startsWith('hex:') ? Buffer.from(t.slice(4), 'hex') : Buffer.from(t.replace(/^base64:/, ''), 'base64');
  return key.length === 32 ? key : undefined;
}
