export interface GroupCommitOptions {
  /** How long an item may wait for company before its batch is written. */
  intervalMs: number;
  /** A batch this large is written at once. */
  maxBatch: number;
  /** Items kept in memory while writes fail; beyond this, push() refuses. */
  maxPending: number;
  /** Called on every failed write, with the number of failures in a row. */
  onError(err: Error, failures: number): void;
}

/** Retry delay after failed writes: the interval, doubling, at most this. */
const MAX_RETRY_MS = 5000;

/** A flush() waiting until the items pushed before it, `target` of them in all, are written. */
interface Waiter {
  target: number;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Group commit for bus subscribers: push() never waits (the mail path logged the event
 * and moves on); items pushed within one interval share one write and one flush. One
 * batch is written at a time; items pushed meanwhile wait for the next. A failed write
 * keeps its items, in order, and is retried; nothing is chained or acknowledged until
 * its batch is on disk.
 */
export class GroupCommit<T> {
  private items: T[] = [];
  /** Items ever accepted, and ever written: the n-th (from 0) is on disk once written > n. */
  private pushed = 0;
  private written = 0;
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing = false;
  /** The window ran out while a batch was being written: the next one goes right after it. */
  private due = false;
  private failures = 0;
  private lastError: Error | undefined;
  private closed = false;

  constructor(
    private readonly write: (batch: T[]) => Promise<void>,
    private readonly o: GroupCommitOptions,
  ) {}

  /** Items in memory, not yet on disk (being written included). */
  get pending(): number {
    return this.pushed - this.written;
  }

  /** true from a failed write until a write succeeds again. */
  get failing(): boolean {
    return this.failures > 0;
  }

  /** False when the item was refused: writes have failed for so long that the buffer is full, or closed. */
  push(item: T): boolean {
    if (this.closed || this.pending >= this.o.maxPending) return false;
    this.items.push(item);
    this.pushed++;
    if (this.items.length >= this.o.maxBatch && !this.failing) this.startWrite();
    else this.arm(this.o.intervalMs);
    return true;
  }

  /**
   * Resolves once the items pushed before the call are written, whatever is pushed after
   * it (a steady stream of items never holds it up); rejects when a batch holding some
   * of them fails (they stay queued and are retried). A caller waiting is a reason to
   * write now: an idle queue writes at once, and while a batch is being written the
   * items join the next one, written right after it. While writes fail it rejects at
   * once with the last error (the items are retried on schedule): no caller waits on a
   * failing disk, and none adds writes to it.
   */
  flush(): Promise<void> {
    const target = this.pushed;
    if (this.written >= target) return Promise.resolve();
    if (this.failing && !this.closed) return Promise.reject(this.lastError as Error);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ target, resolve, reject }));
    this.startWrite();
    return done;
  }

  /** Writes what is left (once more, even while failing); later pushes are refused. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private arm(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.writing) this.due = true;
      else this.startWrite();
    }, ms);
    // The owner's close() flushes; a pending batch must not keep the process alive.
    this.timer.unref();
  }

  private startWrite(): void {
    if (this.writing || !this.items.length) return;
    this.writing = true;
    this.due = false;
    void this.writeBatch(this.items.splice(0, this.o.maxBatch));
  }

  private async writeBatch(batch: T[]): Promise<void> {
    try {
      await this.write(batch);
    } catch (err) {
      this.writing = false;
      this.items.unshift(...batch);
      this.failures++;
      this.lastError = err as Error;
      this.o.onError(err as Error, this.failures);
      // Every flush still waiting needs an item of this batch: the earlier ones are written.
      for (const w of this.waiters.splice(0)) w.reject(err as Error);
      if (!this.closed) {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.arm(Math.min(this.o.intervalMs * 2 ** this.failures, MAX_RETRY_MS));
      }
      return;
    }
    this.writing = false;
    this.failures = 0;
    this.written += batch.length;
    this.waiters = this.waiters.filter((w) => {
      if (w.target > this.written) return true;
      w.resolve();
      return false;
    });
    // Next batch at once when someone waits for it, its window ran out, it is full, or
    // on close; else when its window does.
    if (this.waiters.length || this.due || this.items.length >= this.o.maxBatch || this.closed) this.startWrite();
    else if (this.items.length) this.arm(this.o.intervalMs);
  }
}
