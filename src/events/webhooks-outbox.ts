import { join } from 'node:path';
import { readChainLines } from '../archive/chain-lines.js';
import { GroupCommit } from './audit-batch.js';
import { readLineAt } from './audit-file-io.js';
import { listSegments, SegmentFiles, type LinePosition } from './audit-files.js';
import { backlogReason, trimBacklog } from './webhooks-backlog.js';
import { COMPACT_SHARE, fitsIn, readLines } from './webhooks-compact.js';

/** An event to deliver to one webhook: written before the first attempt. No secret is in it. */
export interface OutboxEvent {
  t: 'event';
  /** The delivery id (Postern-Delivery): receivers de-duplicate on it. */
  id: string;
  /** Which configured webhook (webhooks.ts hookId: from its url and events). */
  hook: string;
  event: string;
  /** Epoch ms of the event: the give-up clock starts here. */
  at: number;
  payload: Record<string, unknown>;
  /**
   * File outbox only: the attempts made so far and when the next one is due (epoch ms), on
   * an event line copied by compaction or moved in from another outbox, so the copy carries
   * its backoff on. A new event has neither: no attempt yet, due at once.
   */
  attempts?: number | undefined;
  dueAt?: number | undefined;
}

/** How a delivery ended: written after the receiver's 2xx, or when it was given up. */
export type OutboxSettled = { t: 'done'; id: string; status: number; at: number } | { t: 'gave-up'; id: string; reason: string; at: number };

/**
 * A failed attempt, written after it: how many were made and when the next is due. A
 * restart resumes the backoff from the last of these (it started again from initialDelay,
 * at once, each time), and giveUpAfter still counts from the event's `at`.
 */
export interface OutboxRetry {
  t: 'retry';
  id: string;
  attempts: number;
  dueAt: number;
}

export interface PendingDelivery {
  id: string;
  hook: string;
  event: string;
  at: number;
  /** Where its event line is now: compaction moves it, updating this object (the one the dispatcher holds). */
  pos: LinePosition;
  /** Attempts made so far and when the next is due (epoch ms; 0: at once), as last recorded (reschedule). */
  attempts: number;
  dueAt: number;
}

const OUTBOX_FILE_BYTES = 8 * 1024 * 1024;
const OUTBOX_MAX_PENDING_LINES = 100_000;
/** Gave-up lines written at open between waits for the disk: well under OUTBOX_MAX_PENDING_LINES. */
const GIVE_UP_CHUNK = 10_000;

interface Item {
  line: string;
  after?: (pos: LinePosition) => void;
}

export interface OutboxOptions {
  flushIntervalMs: number;
  onError: (err: Error, failures: number) => void;
  maxPendingPerHook?: number;
  /** A new file is started once the current one is this large (tests set a small one). */
  fileBytes?: number;
}

/**
 * The webhook queue, on disk under <dataDir>/webhooks/<shard>/: event lines, retry lines
 * after failed attempts, and done / gave-up lines, appended with group commit. What is
 * pending after a restart is every event without a later done line, due as its last retry
 * line (or the copy of its event line) says. Files are deleted oldest first, each once all
 * its events are settled, so a done line is never lost while its event is on disk; or
 * once the few still pending in it are copied, durably and with their ids, into the
 * newest file (compaction, webhooks-compact.ts). A crash between the copy and the
 * deletion leaves an event line twice: the newest is the one read, the other is ignored.
 */
export class Outbox {
  /** Files in write order, and the deliveries whose event line in each is still unsettled. */
  private readonly order: string[];
  private readonly live = new Map<string, Set<PendingDelivery>>();
  /** Deliveries whose settle line is queued: compaction must not copy them after it. */
  private readonly settling = new WeakSet<PendingDelivery>();
  private readonly batches: GroupCommit<Item>;
  private pruning: Promise<void> | undefined;
  private pruneAgain = false;

  private constructor(
    private readonly dir: string,
    private readonly files: SegmentFiles,
    names: string[],
    pending: PendingDelivery[],
    private readonly fileBytes: number,
    onError: (err: Error, failures: number) => void,
    flushIntervalMs: number,
  ) {
    this.order = names.includes(files.currentName) ? names : [...names, files.currentName];
    for (const p of pending) this.track(p);
    this.batches = new GroupCommit<Item>(async (batch) => this.write(batch), { intervalMs: flushIntervalMs, maxBatch: 1000, maxPending: OUTBOX_MAX_PENDING_LINES, onError });
  }

  /**
   * Opens the outbox and finds what is pending. Beyond `maxPendingPerHook` for a webhook
   * (left by a run that could not write its gave-up lines, an outbox adopted from another
   * shard, or a smaller bound) the oldest are given up here, with gave-up lines so they
   * stay given up and their files can go: `pending` holds no more than the bound, and
   * `dropped` says how many were given up, by webhook id. Without a bound nothing is.
   */
  static async open(dir: string, o: OutboxOptions): Promise<{ outbox: Outbox; pending: PendingDelivery[]; dropped: Map<string, number> }> {
    const fileBytes = o.fileBytes ?? OUTBOX_FILE_BYTES;
    const files = await SegmentFiles.open(dir, { maxBytes: fileBytes, daily: false });
    const names = (await listSegments(dir)).map((s) => s.name);
    const pending = new Map<string, PendingDelivery>();
    for (const file of names) {
      for await (const l of readChainLines(join(dir, file))) {
        const r = parseLine(l.line);
        // One id, one delivery: an event line seen again (a copy compaction made before a
        // crash kept it from deleting the old file) replaces the older one. A copy is
        // always written before any settle line of its delivery, so a settled one stays so.
        // A retry line follows its event line (or the copy it was written after: the copy
        // carries the schedule of the retry lines before it).
        if (r?.t === 'event') pending.set(r.id, { id: r.id, hook: r.hook, event: r.event, at: r.at, pos: { file, offset: l.start, length: Buffer.byteLength(l.line) }, attempts: r.attempts ?? 0, dueAt: r.dueAt ?? 0 });
        else if (r?.t === 'retry') rescheduled(pending.get(r.id), r);
        else if (r) pending.delete(r.id);
      }
    }
    const all = [...pending.values()];
    const max = o.maxPendingPerHook ?? Infinity;
    const { kept, over } = trimBacklog(all, max);
    const outbox = new Outbox(dir, files, names, all, fileBytes, o.onError, o.flushIntervalMs);
    try {
      await outbox.giveUpAll(over, backlogReason(max));
    } catch (err) {
      await outbox.close().catch(() => undefined);
      throw err;
    }
    await outbox.prune();
    const dropped = new Map<string, number>();
    for (const p of over) dropped.set(p.hook, (dropped.get(p.hook) ?? 0) + 1);
    return { outbox, pending: kept, dropped };
  }

  /** Queues the event; `onDurable` runs once it is on disk (then it may be sent). False when refused (the disk has been failing). */
  add(e: OutboxEvent, onDurable: (p: PendingDelivery) => void): boolean {
    return this.batches.push({
      line: JSON.stringify(e),
      after: (pos) => {
        const p = { id: e.id, hook: e.hook, event: e.event, at: e.at, pos, attempts: e.attempts ?? 0, dueAt: e.dueAt ?? 0 };
        this.track(p);
        onDurable(p);
      },
    });
  }

  /**
   * Records a failed attempt's outcome: `attempts` made, the next due at `dueAt`. Not
   * waited for: should it not be written, a restart only resumes from an earlier point.
   * Not queued at all while writes fail, so that these lines never take the room in
   * memory that events need.
   */
  reschedule(p: PendingDelivery, attempts: number, dueAt: number): void {
    p.attempts = attempts;
    p.dueAt = dueAt;
    if (!this.batches.failing) this.batches.push({ line: JSON.stringify({ t: 'retry', id: p.id, attempts, dueAt } satisfies OutboxRetry) });
  }

  settle(p: PendingDelivery, s: OutboxSettled): void {
    this.settling.add(p);
    const queued = this.batches.push({
      line: JSON.stringify(s),
      after: () => {
        this.settling.delete(p);
        this.live.get(p.pos.file)?.delete(p);
        void this.prune();
      },
    });
    // Not written: the event stays pending on disk (sent again after a restart), and compaction may copy it.
    if (!queued) this.settling.delete(p);
  }

  async read(p: PendingDelivery): Promise<OutboxEvent> {
    const pos = p.pos;
    const line = await readLineAt(this.dir, pos).catch((err: unknown) => {
      // Moved by compaction while this read was under way, and its old file deleted.
      if (p.pos !== pos) return readLineAt(this.dir, p.pos);
      throw err;
    });
    const r = parseLine(line);
    if (r?.t !== 'event' || r.id !== p.id) throw new Error(`outbox line of ${p.id} is damaged`);
    return r;
  }

  /** Resolves once every line added before the call is on disk; rejects when a write of some of them fails (they stay queued). */
  flush(): Promise<void> {
    return this.batches.flush();
  }

  async close(): Promise<void> {
    try {
      await this.batches.close();
      await this.pruning; // a compaction under way: its copies are written (or refused) by now
    } finally {
      await this.files.close();
    }
  }

  /** Settles each as given up, waiting for the disk every so often: the write buffer would refuse lines beyond its bound. */
  private async giveUpAll(list: PendingDelivery[], reason: string): Promise<void> {
    for (const [i, p] of list.entries()) {
      this.settle(p, { t: 'gave-up', id: p.id, reason, at: Date.now() });
      if ((i + 1) % GIVE_UP_CHUNK === 0) await this.flush();
    }
    await this.flush();
  }

  private async write(batch: Item[]): Promise<void> {
    const positions = await this.files.write(batch.map((i) => i.line));
    const file = this.files.currentName;
    if (this.order.at(-1) !== file) this.order.push(file);
    batch.forEach((item, i) => item.after?.(positions[i] as LinePosition));
  }

  private track(p: PendingDelivery): void {
    let set = this.live.get(p.pos.file);
    if (!set) this.live.set(p.pos.file, (set = new Set()));
    set.add(p);
  }

  /** One at a time (a compaction waits for the disk); a call meanwhile runs it once more after. */
  private prune(): Promise<void> {
    if (this.pruning) {
      this.pruneAgain = true;
      return this.pruning;
    }
    this.pruning = (async () => {
      do {
        this.pruneAgain = false;
        await this.pruneOldest();
      } while (this.pruneAgain);
    })()
      .catch(() => undefined) // a file left is tried again at the next settle, or the next start
      .finally(() => {
        this.pruning = undefined;
      });
    return this.pruning;
  }

  /**
   * Deletes files from the oldest on, never the one being written: each once nothing in
   * it is pending, or once what is pending is few enough to be copied first. Only the
   * oldest ever goes, so a done line is never deleted before the event it settles.
   */
  private async pruneOldest(): Promise<void> {
    while (this.order.length > 1) {
      const oldest = this.order[0] as string;
      const live = this.live.get(oldest);
      if (live?.size && !(fitsIn(live, this.fileBytes / COMPACT_SHARE) && (await this.moveOut(oldest, live)))) return;
      this.order.shift();
      this.live.delete(oldest);
      await this.files.remove(oldest);
    }
  }

  /**
   * Copies the pending event lines of `file` (same event, same ids, with the delivery's
   * schedule as it is now) to the end of the outbox and waits until they are on disk
   * (fdatasync); each delivery's position then points at its copy. True once nothing
   * pending is left in `file`. A delivery settled meanwhile is not copied: its settle line
   * is queued already, and a copy after it would make it pending again at the next start.
   */
  private async moveOut(file: string, live: Set<PendingDelivery>): Promise<boolean> {
    const moving = [...live].filter((p) => !this.settling.has(p));
    const lines = await readLines(this.dir, file, moving.map((p) => p.pos));
    for (const [i, p] of moving.entries()) {
      if (this.settling.has(p) || !live.has(p)) continue;
      const copied = this.batches.push({
        line: withSchedule(lines[i] as string, p),
        after: (pos) => {
          live.delete(p);
          p.pos = pos;
          this.track(p);
        },
      });
      if (!copied) return false; // closed, or the disk has been failing: the file stays
    }
    await this.flush();
    return live.size === 0;
  }
}

function rescheduled(p: PendingDelivery | undefined, r: OutboxRetry): void {
  if (!p) return; // settled, or its event line was damaged
  p.attempts = r.attempts;
  p.dueAt = r.dueAt;
}

/** An event line with the delivery's schedule now (the retry lines before the copy may go with the old file). */
function withSchedule(line: string, p: PendingDelivery): string {
  const r = parseLine(line);
  if (r?.t !== 'event' || (!p.attempts && !r.attempts)) return line; // never attempted: the same text
  return JSON.stringify({ ...r, attempts: p.attempts, dueAt: p.dueAt } satisfies OutboxEvent);
}

function parseLine(line: string): OutboxEvent | OutboxSettled | OutboxRetry | undefined {
  try {
    const r = JSON.parse(line) as OutboxEvent | OutboxSettled | OutboxRetry;
    if (r.t === 'retry') return typeof r.id === 'string' && Number.isFinite(r.attempts) && Number.isFinite(r.dueAt) ? r : undefined;
    return typeof r.id === 'string' && (r.t === 'event' || r.t === 'done' || r.t === 'gave-up') ? r : undefined;
  } catch {
    return undefined; // a damaged line: its event, if any, cannot be sent
  }
}
