import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { MasterKey } from '../common/envelope-crypto.js';
import { HeadKeys, isCreationHead, readHead, type ChainHead } from './chain-head.js';
import { readChainLines } from './chain-lines.js';
import { GENESIS_PREV, lineHash, parseRecord, type ChainRecord } from './chain-record.js';
import { chainInUse } from './chain-writer.js';
import { ADMIN_CHAIN, type ArchiveLayout } from './layout.js';

export interface VerifyProblem {
  chain: string;
  /** The record (seq) the problem is about. */
  record?: number | undefined;
  id?: string | undefined;
  problem: string;
}

export interface ChainWalk {
  records: number;
  head?: ChainHead | undefined;
  problem?: VerifyProblem | undefined;
}

/** Where the chains are and the keys their heads are checked with. */
export interface ChainAccess {
  layout: ArchiveLayout;
  keys: MasterKey[];
}

const exists = (path: string) => stat(path).then(() => true, () => false);

/**
 * Walks one chain: every record must parse, carry the next seq, and the hash of the
 * record before it; the head must be there, authenticate under an archive master key,
 * not be ahead of the log, and match its record; the admin chain's head (written
 * before its records) must cover every record. Stops at the first break (what follows
 * it cannot be trusted to report anything new). `onRecord` sees the records before the
 * break, in order. Shared by `postern archive verify` and by every reader whose
 * decision depends on a chain (the purge, hold list).
 *
 * The admin chain, appended to while it is read, can look broken for a moment (its head
 * read before a batch, its log after): a break found while it is in use is walked again
 * before it is reported. (A journal chain's head follows its records: it only lags.)
 */
export async function walkChain(archive: ChainAccess, name: string, onRecord: (r: ChainRecord) => void = () => undefined): Promise<ChainWalk> {
  if (name !== ADMIN_CHAIN) return walkOnce(archive, name, onRecord);
  for (let attempt = 1; ; attempt++) {
    const seen: ChainRecord[] = [];
    const walk = await walkOnce(archive, name, (r) => seen.push(r));
    if (!walk.problem || attempt === 3 || !(await chainInUse(archive.layout.chainsDir, name))) {
      seen.forEach(onRecord);
      return walk;
    }
  }
}

async function walkOnce(archive: ChainAccess, name: string, onRecord: (r: ChainRecord) => void): Promise<ChainWalk> {
  const records = walkRecords(archive, name);
  for (let next = await records.next(); ; next = await records.next()) {
    if (next.done) return next.value;
    onRecord(next.value);
  }
}

/**
 * The walk of one chain as a stream: yields each record that holds its place in the
 * chain, in order, and returns what walkChain returns. A break in the middle ends the
 * stream there; the head is checked last, so a problem with it comes after every record.
 * For readers that cannot keep a whole chain in memory (search, export).
 */
export async function* walkRecords({ layout, keys }: ChainAccess, name: string): AsyncGenerator<ChainRecord, ChainWalk> {
  const path = layout.chainLog(name);
  const headPath = join(layout.chainsDir, `${name}.head`);
  const head = await readHead(headPath).catch(() => undefined);
  const signedBy = head ? new HeadKeys(keys).signer(name, head) : -1;
  const fail = (records: number, record: number, problem: string): ChainWalk => ({ records, head, problem: { chain: name, record, problem } });
  const inUse = await chainInUse(layout.chainsDir, name);
  let prevHash = GENESIS_PREV;
  let count = 0;
  let headHash: string | undefined;
  if (await exists(path)) {
    for await (const l of readChainLines(path)) {
      const i = l.index;
      if (!l.complete) {
        // A running gateway may be appending this very line right now.
        if (inUse) break;
        return fail(count, i, `record ${i} is incomplete (a torn write or a cut file)`);
      }
      let r;
      try {
        r = parseRecord(l.line);
      } catch {
        return fail(count, i, `record ${i} was edited: it is no longer a valid index record`);
      }
      if (r.seq > i) return fail(count, i, `record ${i} was deleted: the record found in its place has seq ${r.seq}`);
      if (r.seq < i) return fail(count, i, `record ${i} has seq ${r.seq}: records were duplicated or reordered`);
      if (r.prev !== prevHash) return i === 0 ? fail(count, 0, 'record 0 was edited (its prev hash is not the genesis value)') : fail(count, i - 1, `record ${i - 1} was edited: its hash does not match the prev hash stored in record ${i}`);
      if (i === 0 && r.type !== 'genesis') return fail(count, 0, 'record 0 is not a genesis record: records at the start were deleted');
      prevHash = lineHash(l.line);
      if (head && r.seq === head.seq) headHash = prevHash;
      count++;
      yield r;
    }
  }
  if (count === 0) {
    // Nothing written, or a genesis whose write a crash cut short after its head.
    if (!head || (isCreationHead(head) && signedBy >= 0)) return { records: 0 };
    return fail(0, 0, `the index ${path} is ${(await exists(path)) ? 'empty' : 'missing'} but its head says ${head.seq + 1} record(s): the chain was deleted`);
  }
  if (!head) return fail(count, count - 1, `the head file ${headPath} is missing or unreadable: records cut off the end of the index could not be told; restore it from a backup`);
  if (signedBy < 0) return fail(count, head.seq, `the head file ${headPath} does not authenticate under any archive.masterKeys entry: it was rewritten (to hide records cut off the end?), or written with a master key no longer configured (keep old keys until rotate-key has run)`);
  const last = { seq: count - 1, hash: prevHash };
  if (head.seq >= count) {
    // The admin chain's head is written before its records, naming the record before
    // them, and again without it once they are durable: a head with `before` is one a
    // crash left between the two, one batch ahead. Without `before`, records were cut off.
    if (head.before?.seq === last.seq && head.before.hash === last.hash) return { records: count, head };
    return fail(count, count, `records ${count}..${head.seq} were deleted from the end of the index (its head says ${head.seq + 1} records, ${count} remain)`);
  }
  if (headHash !== head.hash) return fail(count, head.seq, `record ${head.seq} was edited: its hash does not match the index head`);
  if (name === ADMIN_CHAIN && head.seq < last.seq) return fail(count, head.seq + 1, `records ${head.seq + 1}..${last.seq} follow the head, which postern writes before its admin records: they were appended by hand (a forged hold release or destruction?)`);
  return { records: count, head };
}
