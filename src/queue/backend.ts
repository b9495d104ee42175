import type { Readable } from 'node:stream';
import type { DeliveryState, Envelope, QueuedMessage } from '../types.js';
import type { ListPosition, MessagePage } from './list-page.js';

/** What ingress knows when DATA starts; the backend adds the size and bodyBits at commit. */
export type IncomingEnvelope = Omit<Envelope, 'size' | 'bodyBits'>;

/**
 * Receives one message body. Nothing is visible to the worker until commit() resolves,
 * and commit() resolves only once body and envelope are durable (invariant 1).
 */
export interface SpoolWriter {
  readonly id: string;
  /** Resolves when the chunk may be released (backpressure). Every chunk is watched for 8-bit bytes (BodyBits). */
  write(chunk: Buffer): Promise<void>;
  commit(): Promise<Envelope>;
  /** Removes everything written so far. Safe to call more than once, or after a failed commit. */
  abort(): Promise<void>;
}

export interface QueueStats {
  depth: number;
  leased: number;
  oldestReceivedAt?: number | undefined;
}

/**
 * One storage interface for the durable queue; every implementation passes the same
 * conformance suite (test/queue/conformance.ts).
 */
export interface QueueBackend {
  /** Recovers after a restart: cleans half-written data, reloads what was queued. */
  open(): Promise<{ recovered: number; cleaned: number }>;
  close(): Promise<void>;

  receive(envelope: IncomingEnvelope): Promise<SpoolWriter>;

  /**
   * Hands out up to `limit` messages whose next attempt is due, each to one caller at a
   * time until it is saved, removed or released. Each carries its lease (QueuedMessage.lease).
   */
  lease(now: number, limit: number): Promise<QueuedMessage[]>;
  /**
   * Leases one message by id when it is queued and nobody holds it (admin changes: retry
   * now, delete). The caller then saves, removes or releases it, as the worker does.
   */
  claim?(id: string): Promise<QueuedMessage | undefined>;
  // Settling a leased message: `lease` is the QueuedMessage.lease it was handed out with.
  // A lease that is no longer the message's current one (it ran out and the message was
  // taken again, here or elsewhere, or it was settled already) is refused with
  // LeaseLostError (src/queue/errors.ts) and nothing is written; release() of such a lease
  // does nothing. Without `lease`, the lease this process holds on the message now is used
  // (an admin change that claims and settles at once), or none.
  /** Gives a leased message back untouched (e.g. on shutdown). */
  release(id: string, lease?: string): Promise<void>;
  /** Durably records recipient progress and releases the lease. */
  save(id: string, state: DeliveryState, lease?: string): Promise<void>;
  /** Deletes a message whose recipients are all final. */
  remove(id: string, lease?: string): Promise<void>;

  openBody(id: string): Promise<Readable>;
  /** The whole body when the backend holds it in memory (small, not yet attempted). */
  bodyInMemory?(id: string): Buffer | undefined;
  get(id: string): Promise<QueuedMessage | undefined>;
  /** Every message at once, in no set order: for tests and small queues (the admin API uses listPage). */
  list(): Promise<QueuedMessage[]>;
  /**
   * Up to `limit` messages after `after` in (receivedAt, id) order (from the start when
   * undefined), with where the next page starts and how many messages the queue holds.
   * Reads only what the page needs, so a large queue is never one answer. A message
   * queued throughout a walk from the first page to the last is listed exactly once.
   */
  listPage(after: ListPosition | undefined, limit: number): Promise<MessagePage>;
  stats(): QueueStats;
  /** Stats read from storage now, where stats() is a cached view of a shared queue (Redis); for metrics. */
  readStats?(): Promise<QueueStats>;
  /** Earliest nextAttemptAt among messages not leased, for the scheduler's sleep. */
  nextDueAt(): number | undefined;
  /** Called whenever a message becomes due earlier than before (e.g. a new commit). */
  onWake(listener: () => void): void;
}

/** Initial delivery state: every recipient pending and due now. */
export function initialState(envelope: Envelope, now = Date.now()): DeliveryState {
  return {
    recipients: envelope.rcptTo.map((rcpt) => ({ rcpt, status: 'pending', attempts: 0, nextAttemptAt: now })),
  };
}

/** Earliest next attempt among pending recipients, undefined when all are final. */
export function nextAttemptOf(state: DeliveryState): number | undefined {
  let next: number | undefined;
  for (const r of state.recipients) {
    if (r.status === 'pending' && (next === undefined || r.nextAttemptAt < next)) next = r.nextAttemptAt;
  }
  return next;
}
