/** Past this many buckets, ended windows are dropped before a new one is added. */
const PRUNE_AT = 10_000;

/**
 * Fixed-window counts in this process's memory (the file store's rate limits). Only
 * buckets with a window still running are kept, so many client addresses cost memory
 * only for as long as their window lasts.
 */
export class HitCounter {
  private readonly windows = new Map<string, { endsAt: number; count: number }>();

  /** Adds `amount` (one event, or a number of bytes) and returns the window's total so far. */
  count(bucket: string, windowMs: number, now = Date.now(), amount = 1): number {
    const current = this.windows.get(bucket);
    if (current && current.endsAt > now) return (current.count += amount);
    if (this.windows.size >= PRUNE_AT) {
      for (const [key, w] of this.windows) if (w.endsAt <= now) this.windows.delete(key);
    }
    this.windows.set(bucket, { endsAt: windowStart(now, windowMs) + windowMs, count: amount });
    return amount;
  }
}

/** Windows start at multiples of their length, so every instance counting in Redis agrees on them. */
export function windowStart(now: number, windowMs: number): number {
  return Math.floor(now / windowMs) * windowMs;
}
