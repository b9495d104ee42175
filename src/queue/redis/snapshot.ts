import type { QueueStats } from '../backend.js';

/** What every script returns: [version, depth, leased, oldest receivedAt, next due, Redis time]. */
export type RawSnapshot = [number, number, number, string | null, string | null, number];

/**
 * The instance's cached view of the shared queue. stats() and nextDueAt() are synchronous
 * in the QueueBackend interface while the truth lives in Redis, so every script returns a
 * fresh reading and the heartbeat takes one periodically. Readings carry Redis's change
 * counter: one that arrives late (replies of different connections, a retried script)
 * never replaces a newer one.
 *
 * Counts are of the whole shared queue (every instance's leases), which is what an
 * operator watching any one instance wants to know.
 */
export class QueueSnapshot {
  private version = -1;
  private depth = 0;
  private leased = 0;
  private oldest: number | undefined;
  private nextDue: number | undefined;
  /** Redis clock minus ours, from the last reading (for logs and lease arithmetic). */
  clockOffsetMs = 0;

  /** Takes a reading; returns true when the next due time moved earlier than before. */
  update(raw: RawSnapshot): boolean {
    const [version, depth, leased, oldest, nextDue, redisNow] = raw;
    this.clockOffsetMs = Number(redisNow) - Date.now();
    if (Number(version) < this.version) return false;
    const previous = this.nextDue;
    this.version = Number(version);
    this.depth = Number(depth);
    this.leased = Number(leased);
    this.oldest = oldest === null ? undefined : Number(oldest);
    this.nextDue = nextDue === null ? undefined : Number(nextDue);
    return this.nextDue !== undefined && (previous === undefined || this.nextDue < previous);
  }

  stats(): QueueStats {
    return { depth: this.depth, leased: this.leased, oldestReceivedAt: this.oldest };
  }

  /** Earliest nextAttemptAt among messages not leased, as of the last reading. */
  nextDueAt(): number | undefined {
    return this.nextDue;
  }
}
