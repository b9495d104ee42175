import { gcmDecrypt, gcmEncrypt } from '../common/envelope-crypto.js';
import type { ItemMeta } from './types.js';

/**
 * Index metadata (sender, recipients, subject...) is encrypted with the item's own data
 * key: the index reveals no content, and shredding an item makes its metadata
 * unreadable too. Encoded as base64(iv | tag | ciphertext).
 */
const metaAad = (id: string) => Buffer.from(`meta:${id}`);

export function sealMeta(meta: ItemMeta, dataKey: Buffer): string {
  const e = gcmEncrypt(dataKey, Buffer.from(JSON.stringify(meta)), metaAad(meta.id));
  return Buffer.concat([e.iv, e.tag, e.ciphertext]).toString('base64');
}

export function openMeta(blob: string, dataKey: Buffer, id: string): ItemMeta {
  const b = Buffer.from(blob, 'base64');
  return JSON.parse(gcmDecrypt(dataKey, b.subarray(0, 12), b.subarray(12, 28), b.subarray(28), metaAad(id)).toString('utf8')) as ItemMeta;
}
