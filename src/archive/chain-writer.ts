import { statSync } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { MasterKey } from '../common/envelope-crypto.js';
import { syncDirectory } from '../common/durable-file.js';
import { FlushWindow } from '../common/flush-window.js';
import { lockHolder, type Lock } from '../queue/fs/lock.js';
import { chainHeldHere, lockChain } from './chain-lock.js';
import { HEAD_BYTES, HeadKeys, headBytes, isCreationHead, readHead, type ChainHead } from './chain-head.js';
import { readChainLines } from './chain-lines.js';
import { GENESIS_PREV, lineHash, parseRecord, type ChainRecord, type RecordBody } from './chain-record.js';
import { ADMIN_CHAIN } from './layout.js';

export type { ChainHead } from './chain-head.js';

interface Pending {
  body: RecordBody;
  resolve: (r: ChainRecord) => void;
  reject: (e: unknown) => void;
}

export { ChainBusy } from './chain-lock.js';

/** Whether some process (this one included) has the chain open for appending. */
export async function chainInUse(chainsDir: string, name: string): Promise<boolean> {
  return chainHeldHere(chainsDir, name) || (await lockHolder(join(chainsDir, `${name}.lock`))) !== undefined;
}

/** Under load, a batch of index records is written at most this often (group commit). */
const FLUSH_WINDOW_MS = 10;

/** An existing chain that must not be appended to: its head is missing, forged or does not match its log. */
export class ChainNotIntact extends Error {
  constructor(
    readonly chain: string,
    readonly reason: string,
  ) {
    super(`archive chain ${chain}: ${reason}; run postern archive verify`);
    this.name = 'ChainNotIntact';
  }
}

export interface ChainOpenOptions {
  /** How long to wait for another process's lock on the chain. */
  lockWaitMs?: number | undefined;
  /** What a new chain's genesis record carries besides its name (a journal chain's admin anchor). */
  genesis?: { admin?: string | undefined } | undefined;
}

/**
 * Why an existing chain's head does not let it be appended to (undefined: it does).
 * Appending would write a fresh, valid head over the evidence, so a head that is
 * missing, forged, or behind records it does not cover stops the writer.
 */
function headProblem(name: string, head: ChainHead | undefined, keys: HeadKeys, last: { seq: number; hash: string }, headFirst: boolean): string | undefined {
  if (!head) return 'its head file is missing or unreadable: records cut off the end of the index could not be told';
  if (keys.signer(name, head) < 0) return 'its head does not authenticate under any archive.masterKeys entry (rewritten, or written with a key that was removed)';
  if (head.seq > last.seq) {
    const interrupted = head.before?.seq === last.seq && head.before.hash === last.hash;
    if (!interrupted) return `the index has ${last.seq + 1} record(s) but its head says ${head.seq + 1}: records were removed`;
  } else if (head.seq === last.seq) {
    if (head.hash !== last.hash) return `its last record (${last.seq}) was edited: it does not match the head`;
  } else if (headFirst) return `records ${head.seq + 1}..${last.seq} follow its head, which is written before its records: they were appended by something other than postern`;
  return undefined;
}

/**
 * The one appender of a hash-chained index log. Records are numbered and chained when
 * their batch is written, not when they are queued, so a failed write never leaves later
 * records chained to lines that are not on disk. Concurrent appends share one write and
 * one fdatasync (group commit); append() resolves once its record is durable.
 *
 * The head (chain-head.ts) is authenticated with the archive key. Journal chains write
 * it after their records, unsynced (a crash may leave it behind the log; records after
 * it are accepted). The admin chain, whose records lift holds and destroy items, writes
 * it durably BEFORE its records, naming the record it follows (`before`): every admin
 * record is covered by an authenticated head, and one appended by hand is not. Once the
 * records are durable it writes the head again without `before`, so records cut off the
 * end show as a deletion, not as a crash between head and records. Every genesis is
 * written head first too, so every chain has a durable head from its first record on.
 */
export class ChainWriter {
  private pending: Pending[] = [];
  private readonly window = new FlushWindow(FLUSH_WINDOW_MS, () => this.flushBatch(), () => this.pending.length > 0);
  private headFh: FileHandle | undefined;
  private readonly headFirst: boolean;
  /**
   * Set when a failed batch could not be cut off the log: the log then ends in lines
   * this writer did not count, so every later batch would follow them (a broken chain)
   * and the next cut would go to the wrong offset, into acknowledged records.
   */
  private broken: Error | undefined;

  private constructor(
    readonly name: string,
    private readonly chainsDir: string,
    private readonly logPath: string,
    private readonly headPath: string,
    private readonly fh: FileHandle,
    private readonly identity: { dev: number; ino: number },
    private readonly lock: Lock,
    private readonly keys: HeadKeys,
    private seq: number,
    private hash: string,
    private bytes: number,
  ) {
    this.headFirst = name === ADMIN_CHAIN;
  }

  /**
   * One appender per chain: a second open, in this process or another, waits for the
   * first to close (up to `lockWaitMs`, then ChainBusy).
   */
  static async open(chainsDir: string, name: string, masterKeys: MasterKey[], opts: ChainOpenOptions = {}): Promise<ChainWriter> {
    const logPath = join(chainsDir, `${name}.log`);
    const keys = new HeadKeys(masterKeys);
    await mkdir(chainsDir, { recursive: true, mode: 0o700 });
    const lock = await lockChain(chainsDir, name, opts.lockWaitMs ?? 10_000);
    let fh: FileHandle | undefined;
    try {
      fh = await open(logPath, 'a+', 0o600);
      const st = await fh.stat();
      let size = st.size;
      let tail = await lastLine(logPath, size);
      if (tail && !tail.complete) {
        // A torn write, never acknowledged: cut off; the line before it is the last record.
        await fh.truncate(tail.start);
        size = tail.start;
        tail = await lastLine(logPath, size);
      }
      const headPath = join(chainsDir, `${name}.head`);
      const last = tail ? { seq: parseRecord(tail.line).seq, hash: lineHash(tail.line) } : undefined;
      const head = await readHead(headPath).catch(() => undefined);
      const w = new ChainWriter(name, chainsDir, logPath, headPath, fh, { dev: st.dev, ino: st.ino }, lock, keys, last?.seq ?? -1, last?.hash ?? GENESIS_PREV, size);
      if (!last) {
        // A head without a log line is a genesis whose write a crash cut short, or a deleted chain.
        if (head && !(isCreationHead(head) && keys.signer(name, head) >= 0)) throw new ChainNotIntact(name, `the index is empty but its head says ${head.seq + 1} record(s): it was deleted`);
        await w.append({ type: 'genesis', chain: name, ...opts.genesis });
        await syncDirectory(chainsDir); // the new log's name, durable too
        return w;
      }
      const problem = headProblem(name, head, keys, last, w.headFirst);
      if (problem) throw new ChainNotIntact(name, problem);
      // Re-signed with the current key (after a rotation), brought level with the log, and
      // rid of a `before` a crash left (flushBatch): it must not outlive its crash window.
      if (head && (head.seq !== last.seq || head.before || keys.signer(name, head) !== 0)) await w.writeHead({ seq: last.seq, hash: last.hash }, true);
      return w;
    } catch (err) {
      await fh?.close();
      await lock.release();
      throw err;
    }
  }

  get lastSeq(): number {
    return this.seq;
  }

  append<R extends ChainRecord>(body: RecordBody<R>): Promise<R> {
    return new Promise<ChainRecord>((resolve, reject) => {
      this.pending.push({ body, resolve, reject });
      this.window.kick();
    }) as Promise<R>;
  }

  async close(): Promise<void> {
    try {
      await this.window.drain();
      await this.fh.close();
      await this.headFh?.close();
    } finally {
      // Always: a chain never let go would keep every later task of this process waiting.
      await this.lock.release();
    }
  }

  private async flushBatch(): Promise<void> {
    const batch = this.pending.splice(0);
    if (this.broken) {
      for (const p of batch) p.reject(this.broken);
      return;
    }
    let seq = this.seq;
    let hash = this.hash;
    const at = new Date().toISOString();
    const records = batch.map((p) => {
      const record = { seq: ++seq, prev: hash, at, ...p.body } as ChainRecord;
      const line = JSON.stringify(record);
      hash = lineHash(line);
      return { record, line };
    });
    const data = Buffer.from(records.map((r) => `${r.line}\n`).join(''));
    const headFirst = this.headFirst || this.seq === -1;
    /** The record this batch follows, named by the head written ahead of it (not by a genesis's). */
    const before = headFirst && this.seq >= 0 ? { seq: this.seq, hash: this.hash } : undefined;
    try {
      if (headFirst) await this.writeHead({ seq, hash, before }, true);
      await this.checkInPlace();
      await this.fh.writeFile(data);
      await this.fh.datasync();
    } catch (err) {
      const failed = `archive index ${this.logPath}: ${(err as Error).message}`;
      await this.fh.truncate(this.bytes).catch((cut: Error) => {
        this.broken = new Error(
          `${failed}; the failed write could not be cut off the index either (${cut.message}): the archive index could not be repaired, ` +
            'so nothing more is appended to it. Fix the disk, then restart postern: at start a torn last line is cut off and the chain goes on from the last complete record.',
        );
      });
      const e = this.broken ?? new Error(failed);
      for (const p of batch) p.reject(e);
      return;
    }
    this.seq = seq;
    this.hash = hash;
    this.bytes += data.length;
    if (!headFirst) {
      // Not flushed: after a crash it may lag the log (verify accepts records after it), never run ahead.
      await this.writeHead({ seq, hash }, false).catch(() => undefined); // the next batch writes it again
    } else if (before) {
      // The records are durable: the head stops naming the record before them, so a head
      // with `before` is only ever found inside a crash window. Left in place, it would
      // pass this batch off as a crash's loss once someone cut it off the log. Should this
      // write fail, the records stand (the head covers them either way); the next batch,
      // or the next open, writes the head again.
      await this.writeHead({ seq, hash }, true).catch(() => undefined);
    }
    records.forEach((r, i) => batch[i]?.resolve(r.record));
  }

  /** A log moved or replaced under an open descriptor would take writes nobody reads. */
  private async checkInPlace(): Promise<void> {
    // Synchronous: a stat of a cached inode is a microsecond; the async form is a thread-pool round trip.
    const st = statSync(this.logPath);
    if (st.ino !== this.identity.ino || st.dev !== this.identity.dev) throw new Error('the index file was moved or replaced while open');
  }

  /** Overwritten in place ('r+'), never truncated: a crash cannot leave it empty. `durable`: fdatasynced, and a new file's name too. */
  private async writeHead(head: ChainHead, durable: boolean): Promise<void> {
    let created = false;
    this.headFh ??= await open(this.headPath, 'r+').catch(async () => {
      created = true;
      return open(this.headPath, 'w+', 0o600);
    });
    await this.headFh.write(headBytes(this.keys.sign(this.name, head)), 0, HEAD_BYTES, 0);
    if (!durable) return;
    await this.headFh.datasync();
    if (created) await syncDirectory(this.chainsDir);
  }
}

/** The last line of a log (complete or torn), read from its end. */
async function lastLine(path: string, size: number): Promise<{ line: string; start: number; complete: boolean } | undefined> {
  if (size === 0) return undefined;
  for (let window = 64 * 1024; ; window *= 4) {
    const from = Math.max(0, size - window);
    let last: { line: string; start: number; complete: boolean } | undefined;
    let lines = 0;
    for await (const l of readChainLines(path, from)) {
      lines++;
      last = { line: l.line, start: l.start, complete: l.complete };
    }
    // The first line read from the middle may be cut: only trust a window with two lines.
    if (from === 0 || lines >= 2) return last;
  }
}
