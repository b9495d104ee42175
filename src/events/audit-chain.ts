import { hash as oneShotHash } from 'node:crypto';

/**
 * One line of the audit trail. `prev` is the SHA-256 (hex) of the previous line's exact
 * bytes, so editing a line breaks the link to it, and `seq` counts from 0 per chain
 * (one chain per worker process), so a deleted line leaves a gap.
 */
export interface AuditRecord {
  seq: number;
  /** When the event happened (ISO 8601). */
  time: string;
  event: string;
  fields: Record<string, unknown>;
  prev: string;
}

/** An event waiting to be chained: seq and prev are given when its batch is written. */
export interface AuditEntry {
  time: number;
  event: string;
  fields: Record<string, unknown>;
}

/** The last record written: where the next one links. */
export interface ChainHead {
  seq: number;
  hash: string;
}

/** The prev of a chain's first record. */
export const GENESIS = '0'.repeat(64);

export const EMPTY_CHAIN: ChainHead = { seq: -1, hash: GENESIS };

export function hashLine(line: string): string {
  // The one-shot form: no Hash object per line (half the cost; every event is a line).
  return oneShotHash('sha256', line, 'hex');
}

/** The lines of a batch, each linked to the one before, and the head after them. */
export function chainEntries(head: ChainHead, entries: AuditEntry[]): { lines: string[]; head: ChainHead } {
  let { seq, hash } = head;
  const lines = entries.map((e) => {
    const record: AuditRecord = { seq: ++seq, time: new Date(e.time).toISOString(), event: e.event, fields: e.fields, prev: hash };
    const line = JSON.stringify(record);
    hash = hashLine(line);
    return line;
  });
  return { lines, head: { seq, hash } };
}

/** Parses a line; throws with what is wrong when it is not an audit record. */
export function parseAuditRecord(line: string): AuditRecord {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch {
    throw new Error('not valid JSON');
  }
  const rec = r as Partial<AuditRecord> | null;
  if (!rec || typeof rec !== 'object') throw new Error('not an audit record');
  if (!Number.isInteger(rec.seq)) throw new Error('no seq');
  if (typeof rec.prev !== 'string' || !/^[0-9a-f]{64}$/.test(rec.prev)) throw new Error('no prev hash');
  if (typeof rec.event !== 'string' || typeof rec.time !== 'string' || !rec.fields || typeof rec.fields !== 'object') throw new Error('missing time, event or fields');
  return rec as AuditRecord;
}
