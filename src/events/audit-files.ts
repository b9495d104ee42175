import { mkdir, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDirectory } from '../common/durable-file.js';
import { acquireLockPatiently, type Lock } from '../queue/fs/lock.js';
import { readTail, type LinePosition } from './audit-file-io.js';

export type { LinePosition } from './audit-file-io.js';

/**
 * The append-only JSON-lines files of one writer (an audit chain, a webhook outbox):
 * `<n>-<YYYY-MM-DD>.jsonl`, numbered in order, the date that of the file's first line.
 * One process writes a directory (a pid lock guards it); a batch of lines is one write
 * and one fdatasync. A line cut short by a crash was never acknowledged: it is cut off at
 * open, so the next line starts clean.
 */
const NAME = /^(\d{6,})-(\d{4}-\d{2}-\d{2})\.jsonl$/;

export interface SegmentName {
  name: string;
  index: number;
  day: string;
}

export interface SegmentOptions {
  /** A new file is started once the current one is this large. */
  maxBytes: number;
  /** Also start a new file when the UTC day changes (audit files per day). */
  daily: boolean;
  lockWaitMs?: number;
}

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const nameOf = (index: number, day: string) => `${String(index).padStart(6, '0')}-${day}.jsonl`;

/** The segment files of a directory in write order ([] when it does not exist). */
export async function listSegments(dir: string): Promise<SegmentName[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names
    .map((name) => NAME.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[0], index: Number(m[1]), day: m[2] as string }))
    .sort((a, b) => a.index - b.index);
}

/** Directories open for writing in this process: the pid lock cannot tell two writers of one process apart. */
const openHere = new Set<string>();

export class SegmentFiles {
  /** A failed batch could not be cut off: the file holds bytes past `size`. */
  private torn = false;

  private constructor(
    private readonly dir: string,
    private readonly opts: SegmentOptions,
    private readonly lock: Lock,
    private current: SegmentName,
    private fh: FileHandle,
    private size: number,
    /** The last complete line found at open (a chain resumes from it). */
    readonly lastLine: string | undefined,
  ) {}

  static async open(dir: string, opts: SegmentOptions): Promise<SegmentFiles> {
    if (openHere.has(dir)) throw new Error(`${dir} is already open for writing in this process`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = await acquireLockPatiently(join(dir, 'writer.lock'), opts.lockWaitMs ?? 10_000).catch((err: Error) => {
      throw new Error(`${dir} has another writer: ${err.message.replace(/^spool /, '')}`);
    });
    openHere.add(dir);
    try {
      const existing = (await listSegments(dir)).at(-1);
      const current = existing ?? { index: 1, day: utcDay(Date.now()), name: nameOf(1, utcDay(Date.now())) };
      const fh = await open(join(dir, current.name), 'a+', 0o600);
      const { size } = await fh.stat();
      const tail = await readTail(fh, size);
      if (tail.end < size) await fh.truncate(tail.end);
      if (!existing) await syncDirectory(dir);
      return new SegmentFiles(dir, opts, lock, current, fh, tail.end, tail.last);
    } catch (err) {
      openHere.delete(dir);
      await lock.release();
      throw err;
    }
  }

  get currentName(): string {
    return this.current.name;
  }

  /**
   * Appends the lines durably (one write, one fdatasync); resolves with where each went.
   * A failed batch is cut off again (truncate to the last good line); when that fails too,
   * nothing more is written to the file until it succeeds (tried again first thing at each
   * write, the batch refused meanwhile): the file is opened for appending, so a batch
   * written after the torn one landed behind it while its positions were counted from the
   * last good line. Every line read back from there on was damaged (the file outbox gave
   * its deliveries up), and the torn fragment merged with the next line.
   */
  async write(lines: string[], now = Date.now()): Promise<LinePosition[]> {
    if (this.torn) {
      await this.fh.truncate(this.size);
      this.torn = false;
    }
    const data = Buffer.from(lines.map((l) => `${l}\n`).join(''));
    const full = this.size > 0 && this.size + data.length > this.opts.maxBytes;
    if (full || (this.opts.daily && this.size > 0 && utcDay(now) !== this.current.day)) await this.rotate(now);
    const start = this.size;
    try {
      for (let done = 0; done < data.length; ) done += (await this.fh.write(data, done, data.length - done)).bytesWritten;
      await this.fh.datasync();
    } catch (err) {
      // Nothing of a failed batch may stay: the next batch must follow the last good line.
      await this.fh.truncate(start).catch(() => (this.torn = true));
      throw err;
    }
    this.size += data.length;
    let offset = start;
    return lines.map((l) => {
      const length = Buffer.byteLength(l);
      const pos = { file: this.current.name, offset, length };
      offset += length + 1;
      return pos;
    });
  }

  /** Deletes a finished file (never the one being written). */
  async remove(name: string): Promise<void> {
    if (name === this.current.name) return;
    await unlink(join(this.dir, name)).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    openHere.delete(this.dir);
    await this.lock.release();
  }

  private async rotate(now: number): Promise<void> {
    const next = { index: this.current.index + 1, day: utcDay(now), name: '' };
    next.name = nameOf(next.index, next.day);
    const fh = await open(join(this.dir, next.name), 'a+', 0o600);
    try {
      await syncDirectory(this.dir);
    } catch (err) {
      // The batch fails and is tried again, which opens the new segment again: this
      // handle would stay open for the life of the process, one per failed try.
      await fh.close().catch(() => undefined);
      throw err;
    }
    await this.fh.close().catch(() => undefined);
    this.fh = fh;
    this.current = next;
    this.size = 0;
  }
}
