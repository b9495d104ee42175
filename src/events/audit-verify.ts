import { join } from 'node:path';
import { GENESIS, hashLine, parseAuditRecord, type AuditRecord } from './audit-chain.js';
import { auditLines, auditShards, type AuditLine } from './audit-read.js';
import { readAuditHead, type AuditHead } from './audit-writer.js';

export interface AuditBreak {
  /** Relative to the data directory. */
  file: string;
  /** 1-based line in that file. */
  line: number;
  reason: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  /** Records checked (up to the break). */
  records: number;
  /** Chains found (one per worker shard, and "cli"). */
  chains: number;
  firstBreak?: AuditBreak | undefined;
}

interface Item {
  at: AuditLine;
  hash: string;
  record?: AuditRecord | undefined;
  error?: string | undefined;
}

/**
 * Walks every chain under <dataDir>/audit and reports the first broken link: the line
 * that was altered (its own hash no longer matches the next line's prev), removed (a
 * seq gap), damaged, or cut from the end (the head file is ahead of the chain).
 */
export async function verifyAudit(dataDir: string): Promise<AuditVerifyResult> {
  const shards = await auditShards(dataDir);
  let records = 0;
  for (const shard of shards) {
    const r = await verifyChain(dataDir, shard);
    records += r.records;
    if (r.firstBreak) return { ok: false, records, chains: shards.length, firstBreak: r.firstBreak };
  }
  return { ok: true, records, chains: shards.length };
}

async function verifyChain(dataDir: string, shard: string): Promise<{ records: number; firstBreak?: AuditBreak }> {
  // The head first: read later it could describe lines appended after the walk began.
  const head = await readAuditHead(join(dataDir, 'audit', shard));
  const lines = auditLines(dataDir, shard)[Symbol.asyncIterator]();
  const read = async (): Promise<Item | undefined> => {
    const n = await lines.next();
    return n.done ? undefined : toItem(n.value);
  };
  let records = 0;
  let prev: Item | undefined;
  for (let cur = await read(); cur; ) {
    // A last line without its newline is a batch being written, or one a crash cut short
    // (never acknowledged; the writer cuts it off when it starts).
    if (!cur.at.complete && cur.at.last) break;
    const next = await read();
    const problem = checkLine(prev, cur, next?.at.complete ? next : undefined, head);
    if (problem) return { records, firstBreak: problem };
    records++;
    prev = cur;
    cur = next;
  }
  const lastSeq = prev?.record?.seq ?? -1;
  if (head && head.seq > lastSeq) {
    const where = prev ? { file: prev.at.file, line: prev.at.line } : { file: join('audit', shard, head.file), line: 0 };
    return { records, firstBreak: { ...where, reason: `the chain ends at seq ${lastSeq} but its head says seq ${head.seq}: records were removed from the end` } };
  }
  return { records };
}

function toItem(at: AuditLine): Item {
  try {
    return { at, hash: hashLine(at.text), record: parseAuditRecord(at.text) };
  } catch (err) {
    return { at, hash: hashLine(at.text), error: (err as Error).message };
  }
}

/** What is wrong at `cur`, judged with its neighbours: which side of a broken link changed. */
function checkLine(prev: Item | undefined, cur: Item, next: Item | undefined, head: AuditHead | undefined): AuditBreak | undefined {
  const at = (i: Item, reason: string): AuditBreak => ({ file: i.at.file, line: i.at.line, reason });
  if (!cur.at.complete) return at(cur, 'line cut short (no newline) inside the chain');
  const r = cur.record;
  if (!r) return at(cur, `line damaged or altered: ${cur.error ?? 'unreadable'}`);
  if (r.event === 'audit.truncated') {
    return at(cur, `records were removed from the end of the chain before this line (its head said seq ${String(r.fields.headSeq)}, the chain ended at seq ${String(r.fields.lastSeq)})`);
  }
  const expectedSeq = prev?.record ? prev.record.seq + 1 : 0;
  // Does the following link hold? For the last line the head file stands in for the next
  // line; an unreadable next line is judged on its own turn.
  const headHolds = !(head && head.seq === r.seq && head.hash !== cur.hash);
  const nextHolds = next ? !next.record || next.record.prev === cur.hash : headHolds;
  const prevName = prev ? `line ${prev.at.line}${prev.at.file === cur.at.file ? '' : ` of ${prev.at.file}`}` : 'the chain start';
  if (r.prev === (prev ? prev.hash : GENESIS)) {
    if (r.seq !== expectedSeq) return at(cur, `line altered: seq is ${r.seq}, expected ${expectedSeq}`);
    if (!next && !headHolds) return at(cur, 'line altered: it does not match the chain head (head.json)');
    return undefined;
  }
  // The link into this line is broken: this line changed (then the next link breaks too),
  // lines before it were removed (a seq gap), or the previous line changed.
  if (!nextHolds) return at(cur, `line altered: its prev does not match ${prevName}, and the next link does not match it`);
  if (r.seq > expectedSeq) return at(cur, `${r.seq - expectedSeq} record(s) missing before this line (seq ${expectedSeq}${r.seq - expectedSeq > 1 ? `–${r.seq - 1}` : ''})`);
  if (!prev) return at(cur, 'line altered: the first record does not link to the chain start');
  return at(prev, 'line altered: its hash does not match the prev of the next line');
}
