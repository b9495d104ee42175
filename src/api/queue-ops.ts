import { EVENTS, type Logger } from '../events/logger.js';
import type { QueueBackend } from '../queue/backend.js';
import type { ListPosition } from '../queue/list-page.js';
import type { QueuedMessage, RecipientState } from '../types.js';

/** A queued message as the API shows it (plain JSON: it also crosses the cluster IPC). */
export interface QueueEntry {
  id: string;
  shard: number;
  receivedAt: string;
  mailFrom: string;
  size: number;
  origin?: string | undefined;
  client: { ip: string; helo: string; tls?: string | undefined; authUser?: string | undefined };
  recipients: {
    rcpt: string;
    status: RecipientState['status'];
    attempts: number;
    nextAttemptAt?: string | undefined;
    lastResponse?: string | undefined;
    lastStatus?: string | undefined;
    method?: string | undefined;
    rule?: string | undefined;
  }[];
}

/** What GET /api/v1/queue asks for: `limit` entries after `after` in (receivedAt, id) order. */
export interface QueueListQuery {
  limit: number;
  after?: ListPosition | undefined;
}

/** One page of the queue as the API shows it (plain JSON, as QueueEntry). */
export interface QueueListPage {
  entries: QueueEntry[];
  /** The next page starts after this; absent at the end of the queue. */
  next?: ListPosition | undefined;
  /** Messages queued as the page was read. */
  total: number;
  /** Every process sees the whole queue (Redis): a cluster takes one process's total, not their sum. */
  shared: boolean;
}

export type QueueChange =
  | { result: 'done'; id: string; shard: number; recipients: number }
  | { result: 'not-found'; id: string }
  | { result: 'busy'; id: string }
  | { result: 'unsupported'; id: string; message: string };

/**
 * What the admin API does to the live queue. One process calls its queue directly
 * (LocalQueueOps); a cluster primary asks every worker over IPC and merges the answers
 * (src/api/cluster-ops.ts). The API code sees only this.
 */
export interface QueueOps {
  /** One page, never the whole queue: a queue of 200,000 messages is not one answer (nor one IPC message). */
  list(query: QueueListQuery): Promise<QueueListPage>;
  show(id: string): Promise<QueueEntry | undefined>;
  /** Makes every pending recipient due now and wakes the delivery worker. */
  retryNow(id: string, actor: string): Promise<QueueChange>;
  /** Removes the message without a bounce (logged as queue.deleted with reason and actor). */
  remove(id: string, reason: string, actor: string): Promise<QueueChange>;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function entryOf({ envelope: e, state }: QueuedMessage, shard: number): QueueEntry {
  return {
    id: e.id,
    shard,
    receivedAt: new Date(e.receivedAt).toISOString(),
    mailFrom: e.mailFrom,
    size: e.size,
    origin: e.origin,
    client: { ip: e.client.ip, helo: e.client.helo, tls: e.client.tls?.protocol, authUser: e.client.authUser },
    recipients: state.recipients.map((r) => ({
      rcpt: r.rcpt,
      status: r.status,
      attempts: r.attempts,
      nextAttemptAt: r.status === 'pending' ? iso(r.nextAttemptAt) : undefined,
      lastResponse: r.lastResponse,
      lastStatus: r.lastStatus,
      method: r.decision?.method,
      rule: r.decision?.ruleId,
    })),
  };
}

/** The queue of this process. Changes take the message's lease first, so they never race a delivery. */
export class LocalQueueOps implements QueueOps {
  constructor(
    private readonly queue: QueueBackend,
    private readonly log: Logger,
    private readonly shard = 0,
    private readonly opts: { sharedQueue?: boolean } = {},
  ) {}

  async list({ limit, after }: QueueListQuery): Promise<QueueListPage> {
    const page = await this.queue.listPage(after, limit);
    return { entries: page.messages.map((m) => entryOf(m, this.shard)), next: page.next, total: page.total, shared: this.opts.sharedQueue ?? false };
  }

  async show(id: string): Promise<QueueEntry | undefined> {
    const m = await this.queue.get(id);
    return m && entryOf(m, this.shard);
  }

  retryNow(id: string, actor: string): Promise<QueueChange> {
    return this.withClaim(id, async (m) => {
      const now = Date.now();
      const pending = m.state.recipients.filter((r) => r.status === 'pending');
      for (const r of pending) r.nextAttemptAt = now;
      // save() releases the lease and wakes the worker, which leases it at once.
      await this.queue.save(id, m.state);
      this.log.info({ event: EVENTS.queueRetried, queueId: id, actor, recipients: pending.map((r) => r.rcpt) }, 'retry now requested');
      return pending.length;
    });
  }

  remove(id: string, reason: string, actor: string): Promise<QueueChange> {
    return this.withClaim(id, async (m) => {
      await this.queue.remove(id);
      const pending = m.state.recipients.filter((r) => r.status === 'pending').map((r) => r.rcpt);
      this.log.warn({ event: EVENTS.queueDeleted, queueId: id, actor, reason, from: m.envelope.mailFrom, recipients: pending }, 'message deleted from the queue');
      return pending.length;
    });
  }

  private async withClaim(id: string, change: (m: QueuedMessage) => Promise<number>): Promise<QueueChange> {
    if (!this.queue.claim) return { result: 'unsupported', id, message: 'this queue backend does not support admin changes' };
    const m = await this.queue.claim(id);
    if (!m) return (await this.queue.get(id)) ? { result: 'busy', id } : { result: 'not-found', id };
    try {
      return { result: 'done', id, shard: this.shard, recipients: await change(m) };
    } catch (err) {
      await this.queue.release(id).catch(() => undefined);
      throw err;
    }
  }
}
