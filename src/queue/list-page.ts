import type { QueuedMessage } from '../types.js';

/**
 * Where a paged listing of the queue stands: the message it gave last. Messages are
 * listed by (receivedAt, id), two things that never change for a message, so the order
 * holds while messages come and go, and "after this position" needs no state on the
 * server: a message that is queued from the first page to the last is listed once, one
 * removed meanwhile is simply not listed again, and one that arrives meanwhile is listed
 * if it sorts after the position (it normally does: it arrived last).
 */
export interface ListPosition {
  /** Epoch ms, as Envelope.receivedAt. */
  receivedAt: number;
  id: string;
}

/** One page of the queue in (receivedAt, id) order. */
export interface MessagePage {
  messages: QueuedMessage[];
  /** The next page starts after this; absent when the listing reached the end of the queue. */
  next?: ListPosition | undefined;
  /** Messages in the queue as the page was read (every backend counts them without reading them). */
  total: number;
}

/**
 * (receivedAt, id) order. Ids are compared by UTF-16 code unit, which for the ASCII ids
 * of the queue is the byte order Redis sorts members of equal score in.
 */
export function comparePositions(a: ListPosition, b: ListPosition): number {
  if (a.receivedAt !== b.receivedAt) return a.receivedAt < b.receivedAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * The first `count` items after `after` (all of them from the start when undefined), in
 * order, without sorting or copying the whole collection: candidates are kept until
 * there are twice `count`, then cut back to the best `count`; after the first cut most
 * items are turned away by one comparison. O(n) for a page of a 200,000-message spool.
 */
export function firstAfter<T>(items: Iterable<T>, positionOf: (item: T) => ListPosition, after: ListPosition | undefined, count: number): T[] {
  if (count <= 0) return [];
  const byPosition = (a: T, b: T) => comparePositions(positionOf(a), positionOf(b));
  let kept: T[] = [];
  let worst: ListPosition | undefined;
  for (const item of items) {
    const p = positionOf(item);
    if (after && comparePositions(p, after) <= 0) continue;
    if (worst && comparePositions(p, worst) >= 0) continue;
    kept.push(item);
    if (kept.length >= 2 * count) {
      kept = kept.sort(byPosition).slice(0, count);
      worst = positionOf(kept[count - 1] as T);
    }
  }
  return kept.sort(byPosition).slice(0, count);
}
