import { join } from 'node:path';
import { readChainLines } from '../archive/chain-lines.js';
import { GroupCommit } from './audit-batch.js';
import { readLineAt } from './audit-file-io.js';
import { listSegments, SegmentFiles, type LinePosition } from './audit-files.js';
import { backlogReason, trimBacklog } from './webhooks-backlog.js';

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
}

/** How a delivery ended: written after the receiver's 2xx, or when it was given up. */
export type OutboxSettled = { t: 'done'; id: string; status: number; at: number } | { t: 'gave-up'; id: string; reason: string; at: number };

export interface PendingDelivery {
  id: string;
  hook: string;
  event: string;
  at: number;
  pos: LinePosition;
}

const OUTBOX_FILE_BYTES = 8 * 1024 * 1024;
const OUTBOX_MAX_PENDING_LINES = 100_000;
/** Gave-up lines written at open between waits for the disk: well under OUTBOX_MAX_PENDING_LINES. */
const GIVE_UP_CHUNK = 10_000;

interface Item {
  line: string;
  after?: (pos: LinePosition) => void;
}

/**
 * The webhook queue, on disk under <dataDir>/webhooks/<shard>/: event lines, and done /
 * gave-up lines for them, appended with group commit. What is pending after a restart is
 * every event without a later done line. Files are deleted oldest first, each only once
 * all its events are settled, so a done line is never lost while its event is on disk.
 */
export class Outbox {
  /** Files in write order, and how many of each file's events are still unsettled. */
  private readonly order: string[];
  private readonly unsettled = new Map<string, number>();
  private readonly batches: GroupCommit<Item>;

  private constructor(
    private readonly dir: string,
    private readonly files: SegmentFiles,
    names: string[],
    pending: PendingDelivery[],
    onError: (err: Error, failures: number) => void,
    flushIntervalMs: number,
  ) {
    this.order = names.includes(files.currentName) ? names : [...names, files.currentName];
    for (const p of pending) this.unsettled.set(p.pos.file, (this.unsettled.get(p.pos.file) ?? 0) + 1);
    this.batches = new GroupCommit<Item>(async (batch) => this.write(batch), { intervalMs: flushIntervalMs, maxBatch: 1000, maxPending: OUTBOX_MAX_PENDING_LINES, onError });
  }

  /**
   * Opens the outbox and finds what is pending. Beyond `maxPendingPerHook` for a webhook
   * (left by a run that could not write its gave-up lines, an outbox adopted from another
   * shard, or a smaller bound) the oldest are given up here, with gave-up lines so they
   * stay given up and their files can go: `pending` holds no more than the bound, and
   * `dropped` says how many were given up, by webhook id. Without a bound nothing is.
   */
  static async open(dir: string, o: { flushIntervalMs: number; onError: (err: Error, failures: number) => void; maxPendingPerHook?: number }): Promise<{ outbox: Outbox; pending: PendingDelivery[]; dropped: Map<string, number> }> {
    const files = await SegmentFiles.open(dir, { maxBytes: OUTBOX_FILE_BYTES, daily: false });
    const names = (await listSegments(dir)).map((s) => s.name);
    const pending = new Map<string, PendingDelivery>();
    for (const file of names) {
      for await (const l of readChainLines(join(dir, file))) {
        const r = parseLine(l.line);
        if (r?.t === 'event') pending.set(r.id, { id: r.id, hook: r.hook, event: r.event, at: r.at, pos: { file, offset: l.start, length: Buffer.byteLength(l.line) } });
        else if (r) pending.delete(r.id);
      }
    }
    const all = [...pending.values()];
    const max = o.maxPendingPerHook ?? Infinity;
    const { kept, over } = trimBacklog(all, max);
    const outbox = new Outbox(dir, files, names, all, o.onError, o.flushIntervalMs);
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
        this.unsettled.set(pos.file, (this.unsettled.get(pos.file) ?? 0) + 1);
        onDurable({ id: e.id, hook: e.hook, event: e.event, at: e.at, pos });
      },
    });
  }

  settle(p: PendingDelivery, s: OutboxSettled): void {
    this.batches.push({
      line: JSON.stringify(s),
      after: () => {
        this.unsettled.set(p.pos.file, (this.unsettled.get(p.pos.file) ?? 1) - 1);
        void this.prune();
      },
    });
  }

  async read(p: PendingDelivery): Promise<OutboxEvent> {
    const r = parseLine(await readLineAt(this.dir, p.pos));
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

  /** Deletes settled files from the oldest on: a done line is never deleted before the event it settles. */
  private async prune(): Promise<void> {
    while (this.order.length > 1 && (this.unsettled.get(this.order[0] as string) ?? 0) <= 0) {
      const name = this.order.shift() as string;
      this.unsettled.delete(name);
      await this.files.remove(name);
    }
  }
}

function parseLine(line: string): OutboxEvent | OutboxSettled | undefined {
  try {
    const r = JSON.parse(line) as OutboxEvent | OutboxSettled;
    return typeof r.id === 'string' && (r.t === 'event' || r.t === 'done' || r.t === 'gave-up') ? r : undefined;
  } catch {
    return undefined; // a damaged line: its event, if any, cannot be sent
  }
}
