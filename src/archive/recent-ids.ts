/**
 * Which queue ids this sink stored recently, so a message journaled once is not stored
 * again. Memory only, by design: the delivery worker marks a message journaled in its
 * queue state and saves that with the attempt's outcome, so the journal is asked again
 * only for a message whose attempt was cut short — by a failed save, or by a crash.
 * Both happen within one attempt of the record; an attempt is bounded by the delivery
 * timeouts, well inside WINDOW_MS. After a restart the set is refilled from the tail of
 * the index chain (at least its last WINDOW_MS, and at least its last 8 MB of records:
 * what was in flight when the gateway stopped, however long ago that was). A message
 * whose attempt outlived all of that could be journaled twice: two copies, never none.
 * (A marker file per id did the same on disk: a create, a stat and a share of a
 * directory fsync per message, the largest part of the journal's cost.)
 */
export class RecentIds {
  static readonly WINDOW_MS = 15 * 60_000;
  /** id → when it was recorded (epoch ms); insertion order is time order. */
  private readonly ids = new Map<string, number>();

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string, at = Date.now()): void {
    this.ids.delete(id);
    this.ids.set(id, at);
    this.prune(at);
  }

  private prune(now: number): void {
    for (const [id, at] of this.ids) {
      if (now - at < RecentIds.WINDOW_MS) break;
      this.ids.delete(id);
    }
  }
}
