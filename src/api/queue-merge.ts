import { comparePositions, type ListPosition } from '../queue/list-page.js';
import type { QueueEntry, QueueListPage } from './queue-ops.js';

/** An entry's place in the listing order (receivedAt is an ISO time to the millisecond: no precision is lost). */
export const positionOfEntry = (e: QueueEntry): ListPosition => ({ receivedAt: Date.parse(e.receivedAt), id: e.id });

/**
 * The gateway's page, from each shard's answer to the same query (cluster primary).
 *
 * Each shard gave its first `limit` entries after the position, so the gateway's first
 * `limit` are among them. The next page may only start where every shard's answer is
 * complete: no later than the earliest `next` a shard gave (its page stopped there), nor
 * than the last entry kept. Entries beyond that point are left for the next page, where
 * they come again anyway, so none is given twice.
 *
 * With a shared queue (Redis) every worker answers from the same queue: entries are
 * merged by id and the total is one worker's, not their sum.
 */
export function mergeQueuePages(pages: QueueListPage[], limit: number): QueueListPage {
  const byId = new Map<string, QueueEntry>();
  for (const p of pages) for (const e of p.entries) byId.set(e.id, e);
  const sorted = [...byId.values()].sort((a, b) => comparePositions(positionOfEntry(a), positionOfEntry(b)));
  const stops = pages.flatMap((p) => (p.next ? [p.next] : []));
  const lastKept = sorted[limit - 1];
  if (sorted.length > limit && lastKept) stops.push(positionOfEntry(lastKept));
  const next = stops.sort(comparePositions)[0];
  const entries = next ? sorted.filter((e) => comparePositions(positionOfEntry(e), next) <= 0) : sorted;
  const shared = pages.some((p) => p.shared);
  const totals = pages.map((p) => p.total);
  return { entries, next, total: shared ? Math.max(0, ...totals) : totals.reduce((a, b) => a + b, 0), shared };
}
