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

/**
 * Group commit for bus subscribers: push() never waits (the mail path logged the event
 * and moves on); items written within one interval share one write and one flush. A
 * failed write keeps its items, in order, and is retried; nothing is chained or
 * acknowledged until its batch is on disk.
 */
export class GroupCommit<T> {
  private items: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly write: (batch: T[]) => Promise<void>,
    private readonly o: GroupCommitOptions,
  ) {}

  get pending(): number {
    return this.items.length;
  }

  /** true from a failed write until a write succeeds again. */
  get failing(): boolean {
    return this.failures > 0;
  }

  /** False when the item was refused: writes have failed for so long that the buffer is full, or closed. */
  push(item: T): boolean {
    if (this.closed || this.items.length >= this.o.maxPending) return false;
    this.items.push(item);
    if (this.items.length >= this.o.maxBatch && !this.draining && this.failures === 0) this.kick();
    else this.arm(this.o.intervalMs);
    return true;
  }

  /** Resolves once everything pushed before the call is written; rejects when a write fails (the items stay queued). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.draining || this.items.length) {
      this.draining ??= this.drain().finally(() => {
        this.draining = undefined;
      });
      await this.draining;
    }
  }

  /** Writes what is left; later pushes are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private kick(): void {
    void this.flush().catch(() => undefined); // drain() has reported it and armed the retry
  }

  private arm(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, ms);
    // The owner's close() flushes; a pending batch must not keep the process alive.
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    while (this.items.length) {
      const batch = this.items.splice(0, this.o.maxBatch);
      try {
        await this.write(batch);
        this.failures = 0;
      } catch (err) {
        this.items.unshift(...batch);
        this.failures++;
        this.o.onError(err as Error, this.failures);
        if (!this.closed) this.arm(Math.min(this.o.intervalMs * 2 ** this.failures, MAX_RETRY_MS));
        throw err;
      }
    }
  }
}
