import type { Redis } from 'ioredis';
import { GroupCommit } from './audit-batch.js';
import { MAX_PENDING_PER_HOOK } from './webhooks-backlog.js';
import type { Hook } from './webhooks-hooks.js';
import type { OutboxEvent } from './webhooks-outbox.js';
import { addScript, leaseScript, settleScript } from './webhooks-redis-scripts.js';

/** A delivery leased to this instance for one attempt. */
export interface LeasedDelivery {
  id: string;
  hook: string;
  token: string;
  /** Attempts made before this one (by any instance). */
  attempts: number;
  /** The stored event, as written by add() (parsed by the caller: a damaged one is given up). */
  eventJson: string;
}

/** A backstop past giveUpAfter: no delivery outlives this in Redis, even if nobody settles it (a webhook no longer configured). */
const KEEP_PAST_GIVE_UP_MS = 86_400_000;

interface Item {
  event: OutboxEvent;
  onDurable: () => void;
}

/**
 * The webhook outbox on the shared Redis (queue.backend: redis). Every instance records
 * the events it saw here, and any instance delivers them, so what an instance recorded
 * but did not deliver before it died is delivered by another. Under the prefix:
 *
 *   wh:d:<id>         HASH  hook, event (OutboxEvent JSON, no secret), attempts, owner and
 *                           token while leased, dropped once the bound gave it up while
 *                           leased; expires giveUpAfter + 1 day after the event
 *                           (a backstop: delivered and given-up ones are deleted at once)
 *   wh:due:<hook>     ZSET  id → next attempt (epoch ms) of deliveries waiting
 *   wh:leases:<hook>  ZSET  id → lease deadline (Redis clock) of deliveries being attempted
 *   wh:age:<hook>     ZSET  id → event time (epoch ms) of every pending delivery (waiting or
 *                           leased): what the bound counts, and gives up the oldest of
 *   wh:fence          counter: lease tokens
 *
 * An event is sent only on a lease taken from here, so it is in Redis before its first
 * POST. Events are written with group commit (one script per batch); while Redis fails
 * they wait in memory, in order, and are written again (bounded, as the file outbox).
 * At most `maxPendingPerHook` deliveries wait per webhook, in all instances together:
 * beyond that the oldest are given up as new ones are added (addScript), and `onDropped`
 * is told how many, for one log line per many.
 */
export class RedisOutbox {
  private readonly batches: GroupCommit<Item>;
  /** Taken by add() and not in Redis yet, in order: what close() hands back when Redis is down. */
  private readonly unwritten = new Set<Item>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly hooks: Map<string, Hook>,
    private readonly o: {
      flushIntervalMs: number;
      onError: (err: Error, failures: number) => void;
      /** Deliveries given up for the bound, by webhook id. */
      onDropped: (hook: string, count: number) => void;
      /** Deliveries found expired (nobody took them within giveUpAfter + 1 day): given up, by webhook id. */
      onExpired?: ((hook: string, count: number) => void) | undefined;
      maxPendingPerHook?: number | undefined;
    },
  ) {
    this.batches = new GroupCommit<Item>((batch) => this.write(batch), { intervalMs: o.flushIntervalMs, maxBatch: 1000, maxPending: 100_000, onError: o.onError });
  }

  /** Queues the event; `onDurable` runs once Redis has it. False when refused (Redis has been failing). */
  add(event: OutboxEvent, onDurable: () => void): boolean {
    const item = { event, onDurable };
    if (!this.batches.push(item)) return false;
    this.unwritten.add(item);
    return true;
  }

  /** Leases up to `limit` due deliveries of one webhook for `leaseMs`; also says when the next one is due. */
  async lease(hook: Hook, limit: number, leaseMs: number, owner: string): Promise<{ rows: LeasedDelivery[]; nextDueAt: number | undefined }> {
    const keys = [this.key('due', hook.id), this.key('leases', hook.id), `${this.prefix}fence`, this.key('age', hook.id)];
    const [rows, nextDue, dropped, expired] = (await leaseScript.run(this.redis, keys, [`${this.prefix}d:`, Date.now(), limit, leaseMs, owner, this.keepMs(hook)])) as [[string, string, string, string][], string | null, number, number];
    if (dropped > 0) this.o.onDropped(hook.id, dropped);
    if (expired > 0) this.o.onExpired?.(hook.id, expired);
    return {
      rows: rows.map(([id, token, eventJson, attempts]) => ({ id, hook: hook.id, token, attempts: Number(attempts), eventJson })),
      nextDueAt: nextDue === null ? undefined : Number(nextDue),
    };
  }

  /** Delivered or given up: the delivery is deleted. */
  async done(d: LeasedDelivery): Promise<void> {
    await this.settle('done', d, 0, d.attempts);
  }

  /** Failed: due again at `dueAt`, with `attempts` made so far. */
  async retry(d: LeasedDelivery, dueAt: number, attempts: number): Promise<void> {
    await this.settle('retry', d, dueAt, attempts);
  }

  /** Resolves once every event added before the call is in Redis; rejects when a write of some of them fails (they stay queued). */
  flush(): Promise<void> {
    return this.batches.flush();
  }

  /**
   * Writes what is left, once more; resolves with the events Redis still does not have
   * (empty when all are written). It swallowed that failure, and the events were gone
   * without a word: the caller keeps them on disk for the next start (webhooks-redis.ts).
   */
  async close(): Promise<OutboxEvent[]> {
    await this.batches.close().catch(() => undefined);
    return [...this.unwritten].map((i) => i.event);
  }

  private async settle(mode: 'done' | 'retry', d: LeasedDelivery, dueAt: number, attempts: number): Promise<void> {
    const hook = this.hooks.get(d.hook);
    const keys = [this.key('d', d.id), this.key('due', d.hook), this.key('leases', d.hook), this.key('age', d.hook)];
    const r = await settleScript.run(this.redis, keys, [mode, d.id, d.token, dueAt, attempts, hook ? this.keepMs(hook) : KEEP_PAST_GIVE_UP_MS]);
    // Given up for the bound while this attempt was made, and it did not deliver.
    if (r === 2) this.o.onDropped(d.hook, 1);
  }

  private async write(batch: Item[]): Promise<void> {
    const args: (string | number)[] = [this.prefix, this.o.maxPendingPerHook ?? MAX_PENDING_PER_HOOK];
    for (const { event: e } of batch) {
      const hook = this.hooks.get(e.hook);
      const keep = hook ? this.keepMs(hook) : KEEP_PAST_GIVE_UP_MS;
      args.push(e.id, e.hook, JSON.stringify(e), e.at, e.at + keep, keep);
    }
    const dropped = (await addScript.run(this.redis, [], args)) as (string | number)[];
    for (const item of batch) this.unwritten.delete(item);
    for (let i = 0; i < dropped.length; i += 2) this.o.onDropped(String(dropped[i]), Number(dropped[i + 1]));
    for (const item of batch) item.onDurable();
  }

  private keepMs(hook: Hook): number {
    return hook.retry.giveUpAfter + KEEP_PAST_GIVE_UP_MS;
  }

  private key(kind: 'd' | 'due' | 'leases' | 'age', id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }
}
