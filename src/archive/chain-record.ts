import { hash as oneShotHash } from 'node:crypto';

/** The prev hash of a chain's first (genesis) record. */
export const GENESIS_PREV = '0'.repeat(64);

interface Base {
  /** 0 for the genesis record, then +1 for each record: a gap shows a deletion. */
  seq: number;
  /** SHA-256 (hex) of the previous record's line: an edit shows in the next record. */
  prev: string;
  /** When the record was written (ISO 8601). */
  at: string;
}

export interface GenesisRecord extends Base {
  type: 'genesis';
  chain: string;
  /**
   * A journal chain: the hash of the admin chain's genesis line when this chain was
   * started (admin-anchor.ts). An admin chain deleted, or deleted and made anew, shows.
   */
  admin?: string | undefined;
}

/** One journaled message. Only ids, times, sizes and crypto parameters are in clear. */
export interface ItemRecord extends Base {
  type: 'item';
  id: string;
  receivedAt: number;
  size: number;
  /** Segment or item file, relative to the archive root, and where the entry starts in it. */
  file: string;
  offset: number;
  /** GCM iv and tag of the content: an item file swapped for another shows. */
  iv: string;
  tag: string;
  /** ItemMeta, encrypted with the item's data key (meta-crypto.ts). */
  meta: string;
}

/** An item destroyed at the end of its retention: what, when (at), which rule. */
export interface DestroyRecord extends Base {
  type: 'destroy';
  id: string;
  chain: string;
  itemSeq: number;
  receivedAt: number;
  rule: string;
  days: number;
}

export interface HoldCriteria {
  /** Sender or recipient address. */
  custodian?: string | undefined;
  /** receivedAt range, epoch ms, inclusive. */
  since?: number | undefined;
  until?: number | undefined;
  /** Case-insensitive, over the decrypted text. */
  keyword?: string | undefined;
}

export interface HoldRecord extends Base, HoldCriteria {
  type: 'hold';
  holdId: string;
  reason: string;
  actor: string;
}

export interface ReleaseRecord extends Base {
  type: 'release';
  holdId: string;
  reason: string;
  actor: string;
}

export interface RotateRecord extends Base {
  type: 'rotate';
  keyId: string;
  count: number;
  actor: string;
}

/**
 * Admin chain: a journal chain was started (written by the gateway that opens it, before
 * it journals anything). Deleting that chain, or deleting it and letting a new one be
 * made, then shows: verify and the purge look for every chain so listed.
 */
export interface ChainStartedRecord extends Base {
  type: 'chain-started';
  chain: string;
  /** lineHash of the chain's genesis line. */
  genesisHash: string;
}

export type ChainRecord = GenesisRecord | ItemRecord | DestroyRecord | HoldRecord | ReleaseRecord | RotateRecord | ChainStartedRecord;

/** A record as a caller gives it to a chain writer, which adds seq, prev and at. */
export type RecordBody<R extends ChainRecord = ChainRecord> = R extends ChainRecord ? Omit<R, keyof Base> : never;

export function lineHash(line: string): string {
  return oneShotHash('sha256', line, 'hex');
}

export function parseRecord(line: string): ChainRecord {
  const r = JSON.parse(line) as ChainRecord;
  if (typeof r !== 'object' || r === null || !Number.isInteger(r.seq) || typeof r.prev !== 'string' || typeof r.type !== 'string') throw new Error('not an index record');
  return r;
}
