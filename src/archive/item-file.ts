import { createCipheriv, createDecipheriv } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { copyFile, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { secureRandomBytes } from '../common/random.js';
import { syncDirectory } from '../common/durable-file.js';
import { rewrap, unwrapDataKey, wrapDataKey, type MasterKey, type WrappedKey } from '../common/envelope-crypto.js';

/**
 * An archive entry: a fixed 512-byte header, then the AES-256-GCM ciphertext of the
 * message (as long as the plaintext). Entries sit back to back in segment files (small
 * items) or alone in an item file (large ones). The header holds the only wrapped copy
 * of the entry's data key, so overwriting it destroys the item (crypto-shredding) and
 * key rotation rewrites only headers.
 *
 *   "PSTARC1\n" {"v":1,"id":...,"keyId":...,"wrappedKey":...,"iv":...,"tag":...,"size":n}\n <spaces>
 */
const MAGIC = 'PSTARC1\n';
export const HEADER_BYTES = 512;

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
  if (buf.length < HEADER_BYTES || buf.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) throw new Error('not an archive entry (bad or destroyed header)');
  const end = buf.indexOf(0x0a, MAGIC.length);
  const h = JSON.parse(buf.subarray(MAGIC.length, end).toString('utf8')) as ItemHeader;
  if (h.v !== 1 || typeof h.id !== 'string' || typeof h.wrappedKey !== 'string') throw new Error('not an archive entry (bad header)');
  return h;
}

function newCipher(id: string) {
  const dataKey = secureRandomBytes(32);
  const iv = secureRandomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
  cipher.setAAD(contentAad(id));
  return { dataKey, iv, cipher };
}

export interface Encrypted {
  header: ItemHeader;
  /** Data key, for the index metadata; the caller zeroes it. */
  dataKey: Buffer;
}

/**
 * A whole entry in memory, for appending to a segment: its pieces (header, ciphertext)
 * are written together with writev, not copied into one buffer first.
 */
export function encryptEntry(id: string, master: MasterKey, body: Buffer): Encrypted & { pieces: Buffer[] } {
  const { dataKey, iv, cipher } = newCipher(id);
  const ciphertext = cipher.update(body);
  const last = cipher.final(); // empty for GCM, a stream cipher
  const header: ItemHeader = { v: 1, id, ...wrapDataKey(dataKey, master, id), iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), size: body.length };
  return { header, dataKey, pieces: [encodeHeader(header), ciphertext, last] };
}

/**
 * Waits for `opening` while `body`, already open, is not read yet. An 'error' nobody
 * listens to ends the process: one the body emits meanwhile is held here, and the read
 * that follows throws it (body.errored). If `opening` fails the body is destroyed: left
 * unread it would keep its file (the spool's message) open, one descriptor per retry.
 */
async function whileBodyWaits<T>(body: Readable, opening: Promise<T>): Promise<T> {
  const hold = () => undefined;
  body.on('error', hold);
  try {
    return await opening;
  } catch (err) {
    body.destroy();
    throw err;
  } finally {
    body.off('error', hold);
  }
}

/**
 * A large body streamed into its own durable file (one AES-GCM pass; the body is never
 * held whole), the header written last at offset 0. The body is read to its end or
 * destroyed, whatever fails.
 */
export async function writeItemFile(path: string, id: string, master: MasterKey, body: Readable): Promise<Encrypted> {
  const { dataKey, iv, cipher } = newCipher(id);
  const fh = await whileBodyWaits(body, open(path, 'w', 0o600));
  try {
    let size = 0;
    let pos = HEADER_BYTES;
    for await (const chunk of body) {
      const c = cipher.update(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (c.length) {
        await fh.write(c, 0, c.length, pos);
        pos += c.length;
      }
    }
    const last = cipher.final(); // empty for GCM, a stream cipher
    if (last.length) await fh.write(last, 0, last.length, pos);
    const header: ItemHeader = { v: 1, id, ...wrapDataKey(dataKey, master, id), iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), size };
    await fh.write(encodeHeader(header), 0, HEADER_BYTES, 0);
    await fh.datasync();
    return { header, dataKey };
  } catch (err) {
    dataKey.fill(0);
    throw err;
  } finally {
    await fh.close();
  }
}

export async function readItemHeader(path: string, offset = 0): Promise<ItemHeader> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEADER_BYTES, offset);
    return decodeHeader(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

export function itemDataKey(header: ItemHeader, masters: MasterKey[]): Buffer {
  return unwrapDataKey(header, masters, header.id);
}

/** The decrypted message as a stream; it errors at the end if the content was altered. */
export function openItemContent(path: string, header: ItemHeader, dataKey: Buffer, offset = 0): Readable {
  const decipher = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(header.iv, 'base64'));
  decipher.setAAD(contentAad(header.id));
  decipher.setAuthTag(Buffer.from(header.tag, 'base64'));
  const start = offset + HEADER_BYTES;
  // `end` is inclusive; an empty message has no ciphertext bytes to read.
  const source = header.size ? createReadStream(path, { start, end: start + header.size - 1 }) : Readable.from([]);
  source.on('error', (err: Error) => decipher.destroy(err));
  return source.pipe(decipher);
}

export async function readItemContent(path: string, header: ItemHeader, dataKey: Buffer, offset = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of openItemContent(path, header, dataKey, offset)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Crypto-shredding: the entry's header (the only wrapped copy of its data key) is
 * overwritten and flushed, so its ciphertext cannot be decrypted even with the master
 * key, wherever copies of those bytes remain. The file itself goes once all its entries
 * are destroyed (purge.ts).
 */
export async function shredEntry(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(Buffer.alloc(HEADER_BYTES), 0, HEADER_BYTES, offset);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** The suffix of the copy rewrapFile writes next to a file; one left behind is a rotation cut short. */
export const REWRAP_SUFFIX = '.rewrap';

/** The file rewrapFile was to replace changed while it worked on a copy: it is left as it is. */
export class FileChangedDuringRewrap extends Error {
  constructor(readonly path: string) {
    super(`${path} changed while its entries' keys were re-wrapped (a gateway appending to it?): it was left as it was`);
    this.name = 'FileChangedDuringRewrap';
  }
}

/**
 * Re-wraps the data keys of the entries at `offsets` with `to`. Written to a copy that
 * replaces the file by rename, so a crash never leaves a half-written header. The
 * rename would throw away whatever was written to the file after it was copied, so it
 * is done only if the file is still the same one (device and inode) with the same size
 * and modification time (else FileChangedDuringRewrap); callers keep files being
 * appended to away from here (active-segments.ts), this is the last check. The copy
 * goes whatever fails; one a crash leaves is removed by the next rotation (rotate.ts).
 */
export async function rewrapFile(path: string, offsets: number[], masters: MasterKey[], to: MasterKey): Promise<number> {
  const before = await stat(path);
  const changes: { offset: number; header: ItemHeader }[] = [];
  for (const offset of offsets) {
    const h = await readItemHeader(path, offset);
    if (h.keyId !== to.id) changes.push({ offset, header: rewrap(h, masters, to, h.id) });
  }
  if (!changes.length) return 0;
  const tmp = `${path}${REWRAP_SUFFIX}`;
  let placed = false;
  try {
    await rm(tmp, { force: true });
    await copyFile(path, tmp, constants.COPYFILE_EXCL);
    const fh = await open(tmp, 'r+');
    try {
      for (const c of changes) await fh.write(encodeHeader(c.header), 0, HEADER_BYTES, c.offset);
      await fh.datasync();
      const copied = await fh.stat();
      const now = await stat(path);
      const same = now.dev === before.dev && now.ino === before.ino && now.size === before.size && now.mtimeMs === before.mtimeMs && copied.size === before.size;
      if (!same) throw new FileChangedDuringRewrap(path);
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    placed = true;
  } finally {
    if (!placed) await rm(tmp, { force: true }).catch(() => undefined);
  }
  await syncDirectory(dirname(path));
  return changes.length;
}
