import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readChainLines } from './chain-lines.js';
import { GENESIS_PREV, lineHash, parseRecord, type ChainRecord } from './chain-record.js';
import { chainInUse, readHead, type ChainHead } from './chain-writer.js';
import type { ArchiveLayout } from './layout.js';

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

const exists = (path: string) => stat(path).then(() => true, () => false);

/**
 * Walks one chain: every record must parse, carry the next seq, and the hash of the
 * record before it; the head must not be ahead of the log and must match its record.
 * Stops at the first break (what follows it cannot be trusted to report anything new).
 * `onRecord` sees the records before the break, in order. Shared by `postern archive
 * verify` and by every reader whose decision depends on a chain (the purge).
 */
export async function walkChain(layout: ArchiveLayout, name: string, onRecord: (r: ChainRecord) => void = () => undefined): Promise<ChainWalk> {
  const path = layout.chainLog(name);
  const headPath = join(layout.chainsDir, `${name}.head`);
  const head = await readHead(headPath).catch(() => undefined);
  const fail = (records: number, record: number, problem: string): ChainWalk => ({ records, head, problem: { chain: name, record, problem } });
  // A log deleted with its head left behind would otherwise read as a chain never written.
  if (!(await exists(path))) return head ? fail(0, 0, `the index ${path} is missing but its head says ${head.seq + 1} record(s): the chain was deleted`) : { records: 0 };
  const inUse = await chainInUse(layout.chainsDir, name);
  let prevHash = GENESIS_PREV;
  let count = 0;
  let headHash: string | undefined;
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
    onRecord(r);
    count++;
  }
  if (!head) return count > 1 ? fail(count, count - 1, `the head file ${headPath} is missing: deletions at the end of the index cannot be checked`) : { records: count };
  if (head.seq >= count) return fail(count, count, `records ${count}..${head.seq} were deleted from the end of the index (its head says ${head.seq + 1} records, ${count} remain)`);
  if (headHash !== head.hash) return fail(count, head.seq, `record ${head.seq} was edited: its hash does not match the index head`);
  return { records: count, head };
}
