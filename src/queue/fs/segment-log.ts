import { closeSync, constants, createReadStream, ftruncate, openSync, writev } from 'node:fs';
import { mkdir, readdir, readFile, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DirectorySyncer } from './group-sync.js';
import { parseSegment, RecordType } from './log-record.js';
import { skipBytes } from './message-file.js';

export interface LiveMessage {
  id: string;
  segment: number;
  envelopeJson: string;
  /** Absolute offset of the body in the segment file. */
  bodyOffset: number;
  bodyLength: number;
}

export interface Appended {
  segment: number;
  /** Absolute offset of the record in the segment file. */
  offset: number;
}

interface Pending {
  buffers: Buffer[];
  length: number;
  durable: boolean;
  resolve: (a: Appended) => void;
  reject: (e: unknown) => void;
}

/**
 * How long a DONE record may wait for a commit to carry it before it is written on its
 * own (a quiet gateway: nothing else arrives).
 */
const DONE_LINGER_MS = 50;

const SEGMENT_FILE = /^(\d{10})\.log$/;

/**
 * Append-only segment files with group commit: every record appended while one batch is
 * being written and flushed goes out with the next batch, in one writev and one
 * fdatasync. A commit resolves only after the flush that carried it, so durability is
 * per record while the cost of a flush is shared by every concurrent transaction.
 *
 * Segments are deleted oldest-first once no live message is left in them, so a DONE
 * record can never be lost while the message it ends still exists on disk.
 *
 * Every write goes through the O_DSYNC descriptor, in order, each one complete before
 * the next starts, so the file is always flushed up to its end. An O_DSYNC write flushes
 * only its own range: a DONE record written through a plain descriptor before a commit
 * could come back as zeros after a power failure, in the middle of the file, and
 * recovery (which stops at the first damaged record) would cut off the acknowledged
 * messages after it. DONE records need no flush of their own, so they wait (up to
 * DONE_LINGER_MS) for the next commit and go out in its write, at no extra cost.
 *
 * The active segment is never deleted, so it is also closed by age: segmentMaxAgeMs after
 * its first record a new one is started (by a timer: on a quiet day no further write
 * comes), and the old one goes as soon as its messages are final. Without that, the
 * plain text of delivered mail would stay on disk until 64 MB more had arrived, which on a
 * quiet gateway can take weeks.
 */
export class SegmentLog {
  /**
   * The active segment, opened O_DSYNC: a batch is written and flushed by one system call
   * (one trip through libuv's thread pool instead of a write and an fdatasync).
   */
  private syncFd: number | undefined;
  private active = 0;
  private position = 0;
  private pending: Pending[] = [];
  private flushing = false;
  private broken = false;
  private readonly live = new Map<number, number>();
  private readonly dirSync: DirectorySyncer;
  private lastFlushAt = 0;
  private rotateTimer: NodeJS.Timeout | undefined;
  /** The active segment is old enough to be closed: the flush loop starts a new one. */
  private rotateDue = false;
  /** Pending DONE records start a flush after DONE_LINGER_MS unless a commit takes them first. */
  private lingerTimer: NodeJS.Timeout | undefined;
  /** Flushes (O_DSYNC writes) made, for tests and the benchmark. */
  flushes = 0;

  constructor(
    private readonly dir: string,
    private readonly segmentMaxBytes = 64 * 1024 * 1024,
    private readonly commitWindowMs = 0,
    private readonly segmentMaxAgeMs = 10 * 60_000,
  ) {
    this.dirSync = new DirectorySyncer(dir);
  }

  /**
   * Reads every segment, cuts a torn tail (a record whose write never completed, so was
   * never acknowledged), and returns the messages that are not yet DONE. Appends then go
   * to a new segment.
   */
  async open(): Promise<LiveMessage[]> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const numbers = (await readdir(this.dir))
      .map((name) => SEGMENT_FILE.exec(name)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const messages = new Map<string, LiveMessage>();
    for (const n of numbers) {
      const path = this.path(n);
      const data = await readFile(path);
      const { records, validLength } = parseSegment(data);
      if (validLength < data.length) await truncate(path, validLength);
      for (const r of records) {
        if (r.type === RecordType.done) {
          messages.delete(r.id);
          continue;
        }
        const id = (JSON.parse(r.envelopeJson) as { id: string }).id;
        messages.set(id, { id, segment: n, envelopeJson: r.envelopeJson, bodyOffset: r.bodyOffset, bodyLength: r.bodyLength });
      }
      this.live.set(n, 0);
    }
    this.active = (numbers[numbers.length - 1] ?? 0) + 1;
    await this.startSegment();
    return [...messages.values()];
  }

  /** Counts a live message in a segment (at recovery, and for each new message). */
  retain(segment: number): void {
    this.live.set(segment, (this.live.get(segment) ?? 0) + 1);
  }

  /** A message left the log (final, or moved to its own file); may free old segments. */
  release(segment: number): void {
    this.live.set(segment, (this.live.get(segment) ?? 1) - 1);
    this.sweepInBackground();
  }

  /**
   * Appends one record. `durable` resolves after the flush that carried it. A record that
   * need not be durable (a DONE) resolves at once: it rides along with the next commit's
   * write, or is written after DONE_LINGER_MS when none comes. Lost in a power failure
   * before that, it only means one more delivery after restart (at-least-once).
   */
  append(buffers: Buffer[], length: number, durable: boolean): Promise<Appended> {
    if (!durable) {
      this.pending.push({ buffers, length, durable, resolve: () => undefined, reject: () => undefined });
      if (!this.flushing) this.armLinger();
      return Promise.resolve({ segment: this.active, offset: -1 });
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ buffers, length, durable, resolve, reject });
      if (!this.flushing) void this.flushLoop(false);
    });
  }

  readRange(segment: number, offset: number, length: number): Readable {
    if (length === 0) return Readable.from([]);
    return createReadStream(this.path(segment), { start: offset, end: offset + length - 1, highWaterMark: 64 * 1024 });
  }

  /**
   * Deletes old segments without live messages, oldest first, never the active one. A
   * segment is forgotten only once its file is gone: one that cannot be removed (EIO,
   * EROFS) stops the sweep and stays, for the next sweep to try again; the error is thrown.
   */
  async sweep(): Promise<void> {
    const numbers = [...this.live.keys()].sort((a, b) => a - b);
    for (const n of numbers) {
      if (n >= this.active || (this.live.get(n) ?? 0) > 0) break;
      await rm(this.path(n), { force: true });
      this.live.delete(n);
    }
  }

  /**
   * A sweep nobody waits for (after a release or a rotation). Its failure is dropped on
   * purpose: the segment stays counted, so the next release or rotation tries again, and
   * a failing disk is what the readiness probe of the spool reports and logs (health.ts).
   * Left unhandled, the rejection would end the process, on every delivered message.
   */
  private sweepInBackground(): void {
    this.sweep().catch(() => undefined);
  }

  async close(): Promise<void> {
    clearTimeout(this.rotateTimer);
    this.rotateDue = false;
    // DONE records still waiting go out now: without them every delivered message in
    // the log would be delivered again after the restart.
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    while (this.flushing) await new Promise((r) => setTimeout(r, 5));
    if (this.pending.length && this.syncFd !== undefined) await this.flushLoop(true);
    closeQuietly(this.syncFd);
    this.syncFd = undefined;
    await this.dirSync.close();
  }

  private path(n: number): string {
    return join(this.dir, `${String(n).padStart(10, '0')}.log`);
  }

  private async startSegment(): Promise<void> {
    // Forgotten before it is closed: should the new file fail to open, the next try must
    // not close this number again, as by then the kernel may have given it to a client's
    // socket or another file, which the log would then close and write into.
    const previous = this.syncFd;
    this.syncFd = undefined;
    closeQuietly(previous);
    this.syncFd = openSync(this.path(this.active), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC, 0o600);
    this.position = 0;
    this.live.set(this.active, this.live.get(this.active) ?? 0);
    // The new file's directory entry must be durable before any commit in it is.
    await this.dirSync.sync();
  }

  /** Starts the next segment; the one before may then be deleted (sweep). */
  private async rotate(): Promise<void> {
    this.rotateDue = false;
    clearTimeout(this.rotateTimer);
    this.active++;
    await this.startSegment();
    this.broken = false;
    this.sweepInBackground();
  }

  /** Writes the DONE records waiting for a commit after DONE_LINGER_MS, unless one takes them first. */
  private armLinger(): void {
    if (this.lingerTimer) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      if (!this.flushing) void this.flushLoop(true);
    }, DONE_LINGER_MS);
    this.lingerTimer.unref();
  }

  /** The first record of a segment starts its clock. */
  private armRotation(segment: number): void {
    clearTimeout(this.rotateTimer);
    this.rotateTimer = setTimeout(() => {
      if (segment !== this.active || this.position === 0) return;
      this.rotateDue = true;
      if (!this.flushing) void this.flushLoop(true);
    }, this.segmentMaxAgeMs);
    this.rotateTimer.unref();
  }

  /**
   * Writes pending records in batches until none is left. Batches of DONE records only
   * are written when `lingered` (their wait is over, or the log is closing); otherwise
   * they are left for the next commit.
   */
  private async flushLoop(lingered: boolean): Promise<void> {
    this.flushing = true;
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    try {
      while (this.pending.length || this.rotateDue) {
        if (this.pending.length && !lingered && !this.pending.some((p) => p.durable) && !this.rotateDue) break;
        if (!this.pending.length) {
          // Rotation by age with nothing to write. Should the new file fail, the next
          // write tries again (broken), as after a failed write.
          await this.rotate().catch(() => (this.broken = true));
          continue;
        }
        // Let other transactions join this batch: one turn of the event loop, or, when
        // the last flush was less than commitWindowMs ago, until the window has passed
        // (under load that caps flushes per second; an idle gateway never waits).
        const wait = this.commitWindowMs - (Date.now() - this.lastFlushAt);
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        else await new Promise((resolve) => setImmediate(resolve));
        const batch = this.pending.splice(0);
        try {
          if (this.broken || this.rotateDue || this.position >= this.segmentMaxBytes) await this.rotate();
          const fd = this.syncFd;
          if (fd === undefined) throw new Error('spool log: no segment is open (the last one could not be created)');
          const start = this.position;
          const segment = this.active;
          const offsets: number[] = [];
          let total = 0;
          const buffers: Buffer[] = [];
          for (const p of batch) {
            offsets.push(start + total);
            total += p.length;
            buffers.push(...p.buffers);
          }
          try {
            await writeAll(fd, buffers, start, total);
            this.flushes++;
            this.lastFlushAt = Date.now();
          } catch (err) {
            // Nothing of this batch was acknowledged: cut it off and move to a new segment.
            this.broken = true;
            await new Promise<void>((resolve) => ftruncate(fd, start, () => resolve()));
            throw err;
          }
          this.position = start + total;
          if (start === 0) this.armRotation(segment);
          batch.forEach((p, i) => p.resolve({ segment, offset: offsets[i] as number }));
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing = false;
      // DONE records left behind (no commit came along) wait for their linger timer.
      if (this.pending.length) this.armLinger();
    }
  }
}

/** A descriptor that already failed may not close cleanly either; it is done with anyway. */
function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    closeSync(fd);
  } catch {
    // nothing more to do with it
  }
}

function writeAll(fd: number, buffers: Buffer[], position: number, total: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = 0;
    let rest = buffers;
    const step = () => {
      // At most 1024 buffers per call (IOV_MAX); writev may also write less than asked.
      writev(fd, rest.slice(0, 1024), position + done, (err, written) => {
        if (err) return reject(err);
        done += written;
        if (done >= total) return resolve();
        rest = skipBytes(buffers, done);
        step();
      });
    };
    step();
  });
}
