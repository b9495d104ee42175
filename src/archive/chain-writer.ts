import { statSync } from 'node:fs';
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDirectory } from '../common/durable-file.js';
import { FlushWindow } from '../common/flush-window.js';
import { acquireLockPatiently, lockHolder, type Lock } from '../queue/fs/lock.js';
import { readChainLines } from './chain-lines.js';
import { GENESIS_PREV, lineHash, parseRecord, type ChainRecord, type RecordBody } from './chain-record.js';

/** The head file: the last durable record (seq and hash), padded to a fixed size. */
const HEAD_BYTES = 256;
export interface ChainHead {
  seq: number;
  hash: string;
}

export async function readHead(path: string): Promise<ChainHead | undefined> {
  try {
    return JSON.parse((await readFile(path, 'utf8')).trim()) as ChainHead;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`archive: cannot read ${path}: ${(err as Error).message}`);
  }
}

interface Pending {
  body: RecordBody;
  resolve: (r: ChainRecord) => void;
  reject: (e: unknown) => void;
}

/** Chains open in this process: the pid lock cannot tell two writers of one process apart. */
const openHere = new Set<string>();

/** Whether some process (this one included) has the chain open for appending. */
export async function chainInUse(chainsDir: string, name: string): Promise<boolean> {
  return openHere.has(join(chainsDir, `${name}.log`)) || (await lockHolder(join(chainsDir, `${name}.lock`))) !== undefined;
}

/**
 * The one appender of a hash-chained index log. Records are numbered and chained when
 * their batch is written, not when they are queued, so a failed write never leaves later
 * records chained to lines that are not on disk. Concurrent appends share one write and
 * one fdatasync (group commit); append() resolves once its record is durable.
 */
/** Under load, a batch of index records is written at most this often (group commit). */
const FLUSH_WINDOW_MS = 10;

export class ChainWriter {
  private pending: Pending[] = [];
  private readonly window = new FlushWindow(FLUSH_WINDOW_MS, () => this.flushBatch(), () => this.pending.length > 0);
  private headFh: FileHandle | undefined;

  private constructor(
    readonly name: string,
    private readonly logPath: string,
    private readonly headPath: string,
    private readonly fh: FileHandle,
    private readonly identity: { dev: number; ino: number },
    private readonly lock: Lock,
    private seq: number,
    private hash: string,
    private bytes: number,
  ) {}

  /** `genesis`: what a new chain's genesis record carries besides its name (a journal chain's admin anchor). */
  static async open(chainsDir: string, name: string, lockWaitMs = 10_000, genesis: { admin?: string | undefined } = {}): Promise<ChainWriter> {
    const logPath = join(chainsDir, `${name}.log`);
    if (openHere.has(logPath)) throw new Error(`archive chain ${name} is already open in this process`);
    await mkdir(chainsDir, { recursive: true, mode: 0o700 });
    let lock: Lock;
    try {
      lock = await acquireLockPatiently(join(chainsDir, `${name}.lock`), lockWaitMs);
    } catch (err) {
      throw new Error(`archive chain ${name} is in use by another process (${(err as Error).message.replace(/^spool /, '')})`);
    }
    openHere.add(logPath);
    try {
      const fh = await open(logPath, 'a+', 0o600);
      const st = await fh.stat();
      const tail = await lastLine(logPath, st.size);
      if (tail && !tail.complete) await fh.truncate(tail.start); // a torn write: never acknowledged
      const headPath = join(chainsDir, `${name}.head`);
      const last = tail?.complete ? tail : undefined;
      const seq = last ? parseRecord(last.line).seq : -1;
      const head = await readHead(headPath).catch(() => undefined); // unreadable: rewritten below
      if (head && head.seq > seq) {
        await fh.close();
        throw new Error(`archive chain ${name}: the index has ${seq + 1} record(s) but its head says ${head.seq + 1}: records were removed; run postern archive verify`);
      }
      const w = new ChainWriter(name, logPath, headPath, fh, { dev: st.dev, ino: st.ino }, lock, seq, last ? lineHash(last.line) : GENESIS_PREV, tail ? (tail.complete ? st.size : tail.start) : 0);
      if (!last) {
        await w.append({ type: 'genesis', chain: name, ...genesis });
        await syncDirectory(chainsDir); // the new log's name, durable too
      }
      return w;
    } catch (err) {
      openHere.delete(logPath);
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
    await this.window.drain();
    openHere.delete(this.logPath);
    await this.fh.close();
    await this.headFh?.close();
    await this.lock.release();
  }

  private async flushBatch(): Promise<void> {
    const batch = this.pending.splice(0);
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
    try {
      await this.checkInPlace();
      await this.fh.writeFile(data);
      await this.fh.datasync();
    } catch (err) {
      await this.fh.truncate(this.bytes).catch(() => undefined);
      const e = new Error(`archive index ${this.logPath}: ${(err as Error).message}`);
      for (const p of batch) p.reject(e);
      return;
    }
    this.seq = seq;
    this.hash = hash;
    this.bytes += data.length;
    await this.writeHead();
    records.forEach((r, i) => batch[i]?.resolve(r.record));
  }

  /** A log moved or replaced under an open descriptor would take writes nobody reads. */
  private async checkInPlace(): Promise<void> {
    // Synchronous: a stat of a cached inode is a microsecond; the async form is a thread-pool round trip.
    const st = statSync(this.logPath);
    if (st.ino !== this.identity.ino || st.dev !== this.identity.dev) throw new Error('the index file was moved or replaced while open');
  }

  /**
   * Not flushed: the head is a tamper check, not data. After a crash it may lag the log
   * (verify accepts records after the head), never run ahead of it.
   */
  private async writeHead(): Promise<void> {
    const buf = Buffer.alloc(HEAD_BYTES, 0x20);
    buf.write(`${JSON.stringify({ seq: this.seq, hash: this.hash })}\n`);
    try {
      // Overwritten in place ('r+'), never truncated: a crash cannot leave it empty.
      this.headFh ??= await open(this.headPath, 'r+').catch(() => open(this.headPath, 'w+', 0o600));
      await this.headFh.write(buf, 0, HEAD_BYTES, 0);
    } catch {
      // the next batch writes it again; a lagging head weakens only the truncation check
    }
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
