import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { syncDirectory } from '../common/durable-file.js';
import { rewrap, unwrapDataKey, wrapDataKey, type MasterKey, type WrappedKey } from '../common/envelope-crypto.js';

/**
 * An item file: a fixed 1024-byte header region, then the AES-256-GCM ciphertext of the
 * message (same length as the plaintext). The header holds the wrapped data key, so
 * overwriting it destroys the item (crypto-shredding) and rotation rewrites only it.
 *
 *   "PSTARC1\n" {"v":1,"id":...,"keyId":...,"wrappedKey":...,"iv":...,"tag":...,"size":n}\n <spaces>
 */
const MAGIC = 'PSTARC1\n';
export const HEADER_BYTES = 1024;

export interface ItemHeader extends WrappedKey {
  v: 1;
  id: string;
  iv: string;
  tag: string;
  /** Plaintext bytes (= ciphertext bytes). */
  size: number;
}

const contentAad = (id: string) => Buffer.from(`item:${id}`);

function encodeHeader(h: ItemHeader): Buffer {
  const buf = Buffer.alloc(HEADER_BYTES, 0x20);
  const text = `${MAGIC}${JSON.stringify(h)}\n`;
  if (Buffer.byteLength(text) > HEADER_BYTES) throw new Error('archive item header too long');
  buf.write(text);
  return buf;
}

export function decodeHeader(buf: Buffer): ItemHeader {
  if (buf.length < HEADER_BYTES || buf.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) throw new Error('not an archive item (bad header)');
  const end = buf.indexOf(0x0a, MAGIC.length);
  const h = JSON.parse(buf.subarray(MAGIC.length, end).toString('utf8')) as ItemHeader;
  if (h.v !== 1 || typeof h.id !== 'string' || typeof h.wrappedKey !== 'string') throw new Error('not an archive item (bad header)');
  return h;
}

/**
 * Encrypts `body` into `path` with a new data key wrapped by `master`, and makes the file
 * durable. Returns the header and the data key (the caller encrypts the index metadata
 * with it, then zeroes it). One AES-GCM pass, streamed: large bodies are never held whole.
 */
export async function writeItemFile(path: string, id: string, master: MasterKey, body: Buffer | Readable): Promise<{ header: ItemHeader; dataKey: Buffer }> {
  const dataKey = randomBytes(32);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
  cipher.setAAD(contentAad(id));
  const fh = await open(path, 'w', 0o600);
  try {
    let size = 0;
    let first: Buffer | undefined;
    if (Buffer.isBuffer(body)) {
      size = body.length;
      first = Buffer.concat([cipher.update(body), cipher.final()]);
    } else {
      let pos = HEADER_BYTES;
      for await (const chunk of body) {
        const c = cipher.update(chunk as Buffer);
        size += (chunk as Buffer).length;
        if (c.length) {
          await fh.write(c, 0, c.length, pos);
          pos += c.length;
        }
      }
      const last = cipher.final();
      if (last.length) await fh.write(last, 0, last.length, pos);
    }
    const header: ItemHeader = { v: 1, id, ...wrapDataKey(dataKey, master, id), iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), size };
    await fh.writev(first ? [encodeHeader(header), first] : [encodeHeader(header)], 0);
    await fh.datasync();
    return { header, dataKey };
  } catch (err) {
    dataKey.fill(0);
    throw err;
  } finally {
    await fh.close();
  }
}

export async function readItemHeader(path: string): Promise<ItemHeader> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEADER_BYTES, 0);
    return decodeHeader(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

export function itemDataKey(header: ItemHeader, masters: MasterKey[]): Buffer {
  return unwrapDataKey(header, masters, header.id);
}

/** The decrypted message as a stream; it errors at the end if the content was altered. */
export function openItemContent(path: string, header: ItemHeader, dataKey: Buffer): Readable {
  const decipher = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(header.iv, 'base64'));
  decipher.setAAD(contentAad(header.id));
  decipher.setAuthTag(Buffer.from(header.tag, 'base64'));
  const source = createReadStream(path, { start: HEADER_BYTES });
  source.on('error', (err) => decipher.destroy(err));
  return source.pipe(decipher);
}

export async function readItemContent(path: string, header: ItemHeader, dataKey: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of openItemContent(path, header, dataKey)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Crypto-shredding: the header (and with it the only wrapped copy of the data key) is
 * overwritten and flushed before the file is removed, so the ciphertext left in free
 * disk blocks cannot be decrypted even with the master key.
 */
export async function shredItemFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(Buffer.alloc(HEADER_BYTES), 0, HEADER_BYTES, 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await unlink(path);
  await syncDirectory(dirname(path));
}

/**
 * Re-wraps the data key with `to`. Written to a copy that replaces the file by rename,
 * so a crash never leaves a half-written header (which would lose the item).
 */
export async function rewrapItemFile(path: string, masters: MasterKey[], to: MasterKey): Promise<boolean> {
  const header = await readItemHeader(path);
  if (header.keyId === to.id) return false;
  const next = rewrap(header, masters, to, header.id);
  const tmp = `${path}.rewrap`;
  await copyFile(path, tmp);
  const fh = await open(tmp, 'r+');
  try {
    await fh.write(encodeHeader(next), 0, HEADER_BYTES, 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDirectory(dirname(path));
  return true;
}
