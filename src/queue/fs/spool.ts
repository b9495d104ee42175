import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import type { DeliveryState, Envelope, QueuedMessage } from '../../types.js';
import { initialState, nextAttemptOf, type IncomingEnvelope, type QueueBackend, type QueueStats, type SpoolWriter } from '../backend.js';
import { LeaseLostError, NoMessageError } from '../errors.js';
import { newQueueId, isQueueId } from '../ids.js';
import { firstAfter, type ListPosition, type MessagePage } from '../list-page.js';
import { DirectorySyncer } from './group-sync.js';
import { DueHeap } from './due-heap.js';
import { acquireLockPatiently, type Lock } from './lock.js';
import { encodeDone, type EncodedMessage } from './log-record.js';
import { MessageFileWriter, readHeaderLine, WRITE_BATCH } from './message-file.js';
import { SegmentLog } from './segment-log.js';
import { FsSpoolWriter, type SpoolSink } from './spool-writer.js';

/** Bodies up to this size are committed as one record of the segment log. */
const LOG_RECORD_MAX = 256 * 1024;
/**
 * A log message's body stays in memory from commit to its first delivery attempt, so
 * delivery does not read back what ingress just wrote (the disk copy is the durable
 * one; memory is only a shortcut). The total is capped so a backlog cannot grow it.
 */
const MEMORY_BODIES_TOTAL = 64 * 1024 * 1024;

type Location = { kind: 'log'; segment: number; bodyOffset: number } | { kind: 'file'; headerLength: number };

interface Entry {
  envelope: Envelope;
  state: DeliveryState;
  location: Location;
  dueAt: number | undefined;
  /** The lease it is handed out with (QueuedMessage.lease), while leased. */
  lease: string | undefined;
  /** A state file exists on disk (written after an attempt left recipients pending). */
  hasStateFile: boolean;
  memoryBody?: Buffer | undefined;
}

export interface SpoolOptions {
  /** How long open() waits for a previous process to release the spool. */
  lockWaitMs?: number;
  /** Segment size before the log starts a new file. */
  segmentMaxBytes?: number;
  /** Minimum time between two log flushes under load (group commit window). */
  commitWindowMs?: number;
  /** The active segment is closed this long after its first record, so delivered mail does not stay on disk. */
  segmentMaxAgeMs?: number;
}

/**
 * The default queue, under <dataDir>/spool/<shard>:
 *
 *   log/<n>.log       append-only segments: small messages, committed in groups (one
 *                     writev + one fdatasync for every transaction waiting at the time)
 *   tmp/<id>          a large message being received; removed at start-up
 *   msg/<id>          a message in its own file: a large one, or one whose delivery was
 *                     deferred (moved out of the log so old segments can go)
 *   state/<id>.json   recipient progress of a deferred message, written atomically
 *   corrupt/<id>      a message file that could not be read back, kept for the operator
 *
 * Ingress answers 250 only after commit() resolves, i.e. after the flush that carried
 * the message (and, for a file, after the rename and the directory fsync).
 */
export class FsSpool implements QueueBackend, SpoolSink {
  readonly logRecordMax = LOG_RECORD_MAX;
  private readonly dirs;
  private readonly index = new Map<string, Entry>();
  private readonly heap = new DueHeap();
  private readonly msgSync: DirectorySyncer;
  private readonly stateSync: DirectorySyncer;
  private readonly log: SegmentLog;
  private readonly wakeListeners: (() => void)[] = [];
  private lock: Lock | undefined;
  private leasedCount = 0;
  /** Numbers the leases, so a settle can be told whose it is (see QueueBackend). */
  private leaseCounter = 0;
  private memoryBytes = 0;

  constructor(
    root: string,
    private readonly options: SpoolOptions = {},
  ) {
    this.dirs = { root, tmp: join(root, 'tmp'), msg: join(root, 'msg'), state: join(root, 'state'), corrupt: join(root, 'corrupt'), log: join(root, 'log') };
    this.msgSync = new DirectorySyncer(this.dirs.msg);
    this.stateSync = new DirectorySyncer(this.dirs.state);
    this.log = new SegmentLog(this.dirs.log, options.segmentMaxBytes, options.commitWindowMs, options.segmentMaxAgeMs);
  }

  /** Disk flushes made so far (group commit makes this far fewer than messages). */
  get flushes(): number {
    return this.log.flushes + this.msgSync.syncs + this.stateSync.syncs;
  }

  async open(): Promise<{ recovered: number; cleaned: number }> {
    // Message content is kept in clear here until delivered: only the gateway's user may read it.
    for (const dir of Object.values(this.dirs)) await mkdir(dir, { recursive: true, mode: 0o700 });
    this.lock = await acquireLockPatiently(join(this.dirs.root, 'postern.lock'), this.options.lockWaitMs ?? 5000);
    let cleaned = 0;
    for (const name of await readdir(this.dirs.tmp)) {
      await rm(join(this.dirs.tmp, name), { force: true });
      cleaned++;
    }
    const now = Date.now();
    for (const name of (await readdir(this.dirs.msg)).sort()) {
      if (!isQueueId(name)) continue;
      const loaded = await this.loadMessageFile(name, now);
      if (loaded) this.track(name, loaded);
    }
    // A message in its own file wins over its copy in the log: the move to the file
    // completed, only its DONE record did not reach the log.
    for (const m of await this.log.open()) {
      if (this.index.has(m.id)) continue;
      const envelope = { ...(JSON.parse(m.envelopeJson) as Envelope), size: m.bodyLength };
      this.log.retain(m.segment);
      this.track(m.id, { envelope, state: initialState(envelope, now), location: { kind: 'log', segment: m.segment, bodyOffset: m.bodyOffset }, hasStateFile: false });
    }
    await this.log.sweep();
    // State files whose message is gone, and atomic-write temp files, are cleaned by
    // reference, never by age.
    for (const name of await readdir(this.dirs.state)) {
      const id = name.replace(/\.json(\.tmp)?$/, '');
      if (name.endsWith('.tmp') || this.index.get(id)?.location.kind !== 'file') {
        await rm(join(this.dirs.state, name), { force: true });
        cleaned++;
      }
    }
    return { recovered: this.index.size, cleaned };
  }

  async close(): Promise<void> {
    await this.log.close();
    await this.msgSync.close();
    await this.stateSync.close();
    await this.lock?.release();
    this.lock = undefined;
  }

  async receive(incoming: IncomingEnvelope): Promise<SpoolWriter> {
    return new FsSpoolWriter(this, { ...incoming, id: incoming.id || newQueueId() });
  }

  // --- SpoolSink: what the writer calls ---------------------------------------------

  tmpPath(id: string): string {
    return join(this.dirs.tmp, id);
  }

  msgPath(id: string): string {
    return join(this.dirs.msg, id);
  }

  async appendToLog(encoded: EncodedMessage): Promise<{ segment: number; bodyOffset: number }> {
    const { segment, offset } = await this.log.append(encoded.buffers, encoded.length, true);
    return { segment, bodyOffset: offset + encoded.bodyOffset };
  }

  syncMessageDir(): Promise<void> {
    return this.msgSync.sync();
  }

  committedToLog(envelope: Envelope, segment: number, bodyOffset: number, body: Buffer[]): void {
    this.log.retain(segment);
    this.track(envelope.id, { envelope, state: initialState(envelope, envelope.receivedAt), location: { kind: 'log', segment, bodyOffset }, hasStateFile: false });
    const entry = this.index.get(envelope.id);
    if (entry && this.memoryBytes + envelope.size <= MEMORY_BODIES_TOTAL) {
      entry.memoryBody = body.length === 1 ? body[0] : Buffer.concat(body, envelope.size);
      this.memoryBytes += envelope.size;
    }
    this.wake();
  }

  committedToFile(envelope: Envelope, headerLength: number): void {
    this.track(envelope.id, { envelope, state: initialState(envelope, envelope.receivedAt), location: { kind: 'file', headerLength }, hasStateFile: false });
    this.wake();
  }

  // --- the worker's side ------------------------------------------------------------

  async lease(now: number, limit: number): Promise<QueuedMessage[]> {
    const out: QueuedMessage[] = [];
    while (out.length < limit) {
      const top = this.heap.peek();
      if (!top || top.dueAt > now) break;
      this.heap.pop();
      const entry = this.index.get(top.id);
      if (!entry || entry.lease !== undefined || entry.dueAt !== top.dueAt) continue; // stale heap entry
      out.push({ envelope: entry.envelope, state: cloneState(entry.state), lease: this.leaseOut(entry) });
    }
    return out;
  }

  async claim(id: string): Promise<QueuedMessage | undefined> {
    const entry = this.index.get(id);
    if (!entry || entry.lease !== undefined) return undefined;
    // Its heap entry stays: lease() skips leased entries, and save/release push it again.
    return { envelope: entry.envelope, state: cloneState(entry.state), lease: this.leaseOut(entry) };
  }

  async release(id: string, lease?: string): Promise<void> {
    const entry = this.index.get(id);
    if (entry?.lease === undefined || (lease !== undefined && entry.lease !== lease)) return;
    this.unlease(entry);
    if (entry.dueAt !== undefined) this.heap.push(entry.dueAt, id);
    this.wake();
  }

  /**
   * Records progress of a message that still has pending recipients. A message still in
   * the log first moves to its own file, so the segment it came in can be deleted while
   * it waits for its next attempt.
   */
  async save(id: string, state: DeliveryState, lease?: string): Promise<void> {
    const entry = this.index.get(id);
    if (!entry) throw new NoMessageError(`queue: no message ${id}`);
    checkLease(entry, lease);
    if (nextAttemptOf(state) === undefined) return this.remove(id, lease);
    if (entry.location.kind === 'log') await this.moveToFile(entry);
    const file = join(this.dirs.state, `${id}.json`);
    const tmp = `${file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(state));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    await this.stateSync.sync();
    entry.state = cloneState(state);
    entry.dueAt = nextAttemptOf(state);
    entry.hasStateFile = true;
    this.dropMemoryBody(entry);
    this.unlease(entry);
    if (entry.dueAt !== undefined) this.heap.push(entry.dueAt, id);
    this.wake();
  }

  /**
   * Removal is not flushed: should it be lost in a power failure, the message is
   * delivered once more after restart (at-least-once), which costs less than a disk
   * flush per delivered message. A process crash loses nothing: the writes are in the
   * page cache.
   */
  async remove(id: string, lease?: string): Promise<void> {
    const entry = this.index.get(id);
    if (entry) {
      checkLease(entry, lease);
      this.unlease(entry);
      this.dropMemoryBody(entry);
      this.index.delete(id);
    }
    if (entry?.location.kind === 'log') {
      const done = encodeDone(id);
      await this.log.append([done], done.length, false);
      this.log.release(entry.location.segment);
      return;
    }
    // The message file goes first: a crash in between leaves only an orphan state file,
    // which open() cleans because nothing refers to it.
    await unlink(join(this.dirs.msg, id)).catch(ignoreMissing);
    if (!entry || entry.hasStateFile) await unlink(join(this.dirs.state, `${id}.json`)).catch(ignoreMissing);
  }

  async openBody(id: string): Promise<Readable> {
    const entry = this.index.get(id);
    if (!entry) throw new Error(`queue: no message ${id}`);
    if (entry.memoryBody) return Readable.from([entry.memoryBody], { objectMode: false });
    const loc = entry.location;
    if (loc.kind === 'log') return this.log.readRange(loc.segment, loc.bodyOffset, entry.envelope.size);
    return createReadStream(join(this.dirs.msg, id), { start: loc.headerLength, highWaterMark: WRITE_BATCH });
  }

  bodyInMemory(id: string): Buffer | undefined {
    return this.index.get(id)?.memoryBody;
  }

  async get(id: string): Promise<QueuedMessage | undefined> {
    const entry = this.index.get(id);
    return entry && { envelope: entry.envelope, state: cloneState(entry.state) };
  }

  async list(): Promise<QueuedMessage[]> {
    return [...this.index.values()].map((e) => ({ envelope: e.envelope, state: cloneState(e.state) }));
  }

  /** One pass over the index; only the page's states are copied. */
  async listPage(after: ListPosition | undefined, limit: number): Promise<MessagePage> {
    const picked = firstAfter(this.index.values(), (e) => e.envelope, after, limit + 1);
    const page = picked.slice(0, limit);
    const last = page[page.length - 1];
    return {
      messages: page.map((e) => ({ envelope: e.envelope, state: cloneState(e.state) })),
      next: picked.length > limit && last ? { receivedAt: last.envelope.receivedAt, id: last.envelope.id } : undefined,
      total: this.index.size,
    };
  }

  stats(): QueueStats {
    let oldest: number | undefined;
    for (const e of this.index.values()) if (oldest === undefined || e.envelope.receivedAt < oldest) oldest = e.envelope.receivedAt;
    return { depth: this.index.size, leased: this.leasedCount, oldestReceivedAt: oldest };
  }

  nextDueAt(): number | undefined {
    // Drop stale heap tops so the scheduler does not wake for nothing.
    for (let top = this.heap.peek(); top; top = this.heap.peek()) {
      const entry = this.index.get(top.id);
      if (entry && entry.lease === undefined && entry.dueAt === top.dueAt) return top.dueAt;
      this.heap.pop();
    }
    return undefined;
  }

  onWake(listener: () => void): void {
    this.wakeListeners.push(listener);
  }

  private wake(): void {
    for (const l of this.wakeListeners) l();
  }

  /** Moves every message still in the log into its own file (used to merge shards). */
  async moveAllToFiles(): Promise<void> {
    for (const entry of this.index.values()) await this.moveToFile(entry);
  }

  /** Copies a log message into its own file (durably), then ends its life in the log. */
  private async moveToFile(entry: Entry): Promise<void> {
    const loc = entry.location;
    if (loc.kind !== 'log') return;
    const { id } = entry.envelope;
    const { size: _size, ...incoming } = entry.envelope;
    const header = Buffer.from(`${JSON.stringify(incoming)}\n`);
    const tmp = this.tmpPath(id);
    await rm(tmp, { force: true });
    const file = await MessageFileWriter.create(tmp, header);
    try {
      await pipeline(await this.openBody(id), new Writable({ write: (chunk: Buffer, _enc, cb) => void file.write(chunk).then(() => cb(), cb) }));
      await file.finish(this.msgPath(id));
    } catch (err) {
      await file.discard();
      await rm(tmp, { force: true });
      throw err;
    }
    await this.msgSync.sync();
    entry.location = { kind: 'file', headerLength: header.length };
    const done = encodeDone(id);
    await this.log.append([done], done.length, false);
    this.log.release(loc.segment);
  }

  private dropMemoryBody(entry: Entry): void {
    if (entry.memoryBody) {
      this.memoryBytes -= entry.envelope.size;
      entry.memoryBody = undefined;
    }
  }

  private leaseOut(entry: Entry): string {
    entry.lease = String(++this.leaseCounter);
    this.leasedCount++;
    return entry.lease;
  }

  private unlease(entry: Entry): void {
    if (entry.lease !== undefined) {
      entry.lease = undefined;
      this.leasedCount--;
    }
  }

  private track(id: string, loaded: Omit<Entry, 'dueAt' | 'lease'>): void {
    const dueAt = nextAttemptOf(loaded.state);
    this.index.set(id, { ...loaded, dueAt, lease: undefined });
    if (dueAt !== undefined) this.heap.push(dueAt, id);
  }

  private async loadMessageFile(id: string, now: number): Promise<Omit<Entry, 'dueAt' | 'lease'> | undefined> {
    const path = join(this.dirs.msg, id);
    try {
      const { header, headerLength } = await readHeaderLine(path);
      const { size } = await stat(path);
      const envelope = { ...(JSON.parse(header) as IncomingEnvelope), id, size: size - headerLength } as Envelope;
      if (!Array.isArray(envelope.rcptTo) || typeof envelope.mailFrom !== 'string') throw new Error('envelope line lacks rcptTo/mailFrom');
      let state: DeliveryState;
      let hasStateFile = true;
      try {
        state = JSON.parse(await readFile(join(this.dirs.state, `${id}.json`), 'utf8')) as DeliveryState;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        state = initialState(envelope, now);
        hasStateFile = false;
      }
      return { envelope, state, location: { kind: 'file', headerLength }, hasStateFile };
    } catch (err) {
      // Never delete mail we cannot read: park it where an operator will look.
      await rename(path, join(this.dirs.corrupt, id)).catch(() => undefined);
      await writeFile(join(this.dirs.corrupt, `${id}.reason`), `${(err as Error).message}\n`).catch(() => undefined);
      return undefined;
    }
  }
}

/** Recipient states are flat records: a shallow copy of each is a full copy. Every other field is kept. */
function cloneState(state: DeliveryState): DeliveryState {
  return { ...state, recipients: state.recipients.map((r) => ({ ...r })) };
}

/**
 * A settle that presents a lease must present the message's current one. Leases here
 * never run out, so only a lease settled already can be stale; refused all the same, as
 * on Redis, and the same way.
 */
function checkLease(entry: Entry, lease: string | undefined): void {
  if (lease !== undefined && entry.lease !== lease) throw new LeaseLostError(`queue: lease ${lease} on ${entry.envelope.id} is no longer held (settled already)`);
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}
