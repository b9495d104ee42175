import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { MasterKey } from '../common/envelope-crypto.js';

/** A head file's size: overwritten in place, never truncated, so a crash cannot leave it empty. */
export const HEAD_BYTES = 512;

/**
 * A chain's head: its last record's seq and hash, authenticated with a key derived from
 * the archive master key. Without the key nobody can write a head that verifies, so
 * records cut off the end of a log (and the head rewritten to match) show, and so does
 * a head deleted (every chain has one from its genesis on).
 */
export interface ChainHead {
  seq: number;
  hash: string;
  /**
   * The chain's last record before this head was written, when the head is written
   * ahead of its records (the admin chain, and every genesis): a crash between the two
   * leaves the log ending there, which is not a deletion.
   */
  before?: { seq: number; hash: string } | undefined;
  /** HMAC-SHA256 of the chain's name and the fields above (headMac). */
  mac?: string | undefined;
}

/** The MAC key of a master key: HKDF, so the master key itself never keys anything but wrapping. */
const macKeyOf = (master: MasterKey): Buffer => Buffer.from(hkdfSync('sha256', master.key, Buffer.alloc(0), 'postern archive chain head v1', 32));

function headMac(key: Buffer, chain: string, h: ChainHead): Buffer {
  return createHmac('sha256', key)
    .update(JSON.stringify([chain, h.seq, h.hash, h.before?.seq ?? null, h.before?.hash ?? null]))
    .digest();
}

/** Signs heads with the first master key, checks them with any configured one (key rotation). */
export class HeadKeys {
  private readonly keys: Buffer[];

  constructor(masters: MasterKey[]) {
    if (!masters.length) throw new Error('archive: no master key to authenticate chain heads with');
    this.keys = masters.map(macKeyOf);
  }

  sign(chain: string, h: ChainHead): ChainHead {
    return { seq: h.seq, hash: h.hash, ...(h.before ? { before: h.before } : {}), mac: headMac(this.keys[0] as Buffer, chain, h).toString('hex') };
  }

  /** Which configured key wrote it (0: the current one); -1 when none did. */
  signer(chain: string, h: ChainHead): number {
    const mac = typeof h.mac === 'string' && /^[0-9a-f]{64}$/.test(h.mac) ? Buffer.from(h.mac, 'hex') : undefined;
    if (!mac) return -1;
    return this.keys.findIndex((k) => timingSafeEqual(headMac(k, chain, h), mac));
  }
}

/** The head file's content; undefined when there is none. Throws when it cannot be read or parsed. */
export async function readHead(path: string): Promise<ChainHead | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
  const h = (() => {
    try {
      return JSON.parse(text.trim()) as ChainHead;
    } catch {
      return undefined;
    }
  })();
  if (!h || !Number.isInteger(h.seq) || typeof h.hash !== 'string') throw new Error(`${path} is not a chain head`);
  return h;
}

/** A head written before a chain's genesis reached its log: its creation was cut short, nothing was lost. */
export const isCreationHead = (h: ChainHead): boolean => h.seq === 0 && !h.before;

/** The head's bytes: JSON, padded with spaces to HEAD_BYTES. */
export function headBytes(h: ChainHead): Buffer {
  const buf = Buffer.alloc(HEAD_BYTES, 0x20);
  buf.write(`${JSON.stringify(h)}\n`);
  return buf;
}
