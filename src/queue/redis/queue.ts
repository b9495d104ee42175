/**
 * The Redis queue backend: several Postern instances share one queue on one Redis.
 *
 * Why ioredis with our own Lua scripts and not BullMQ: BullMQ keeps a job's data as one
 * JSON value written in one command, so a 25 MB body would be held whole in memory and
 * sent at once, and there is no step that makes a separately streamed body visible
 * together with its job. Its Worker is push-based and owns retries and backoff, while
 * QueueBackend is pull-based (lease(now, limit)) with per-recipient progress saved by the
 * worker and its own retry schedule, and Postern needs a WAIT for replicas before each
 * "250". Mapping lease/save/release/nextDueAt onto BullMQ's job life cycle would fight the
 * library; a handful of atomic scripts on ioredis (the technique BullMQ itself uses) keeps
 * every durability rule in plain sight:
 *
 * - commit(): the body is APPENDed to a temp key while DATA arrives; one script renames it
 *   into place, writes envelope and state and adds the message to the due set. It resolves
 *   only after Redis acknowledged that script (and, with waitReplicas, after WAIT).
 * - lease(): one script takes due messages, giving each a fencing token and a deadline on
 *   the Redis clock; the heartbeat renews them; expired leases go back to the due set.
 * - save() / release() / remove() must present the current token, so an instance that
 *   stalled past its lease cannot overwrite the progress of the one that took over. The
 *   token travels with the attempt (QueuedMessage.lease), not with the message id: an
 *   attempt of this very instance whose lease ran out while the message was taken again
 *   here is refused just the same.
 *
 * Key layout: keys.ts. Redis connection, TLS and the persistence check: connect.ts,
 * durability.ts. Needs Redis 6.2 or later, checked at connect (version.ts: these
 * scripts read TIME before they write, which needs effect replication, 5.0; the portal
 * store on the same Redis needs SET ... PXAT, 6.2), standalone (with or without
 * replicas), not Cluster.
 */
import type { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import type { Logger } from '../../events/logger.js';
import type { DeliveryState, Envelope, QueuedMessage } from '../../types.js';
import { nextAttemptOf, type IncomingEnvelope, type QueueBackend, type QueueStats, type SpoolWriter } from '../backend.js';
import { newQueueId } from '../ids.js';
import type { ListPosition, MessagePage } from '../list-page.js';
import { openBodyStream } from './body-stream.js';
import { decodeMessage, dueField } from './codec.js';
import { commitToRedis, waitForReplicas } from './commit.js';
import { REDIS_EVENTS } from './events.js';
import { newInstanceId } from './instance-id.js';
import { RedisKeys } from './keys.js';
import { LeaseKeeper } from './leases.js';
import { LeaseLostError } from './lua.js';
import { getMessage, listMessages } from './reads.js';
import { listPage } from './page.js';
import { cleanScript, statsScript } from './scripts.js';
import { RedisReadyProbe, type ReadyProbeOptions } from './ready-probe.js';
import { QueueSnapshot, type RawSnapshot } from './snapshot.js';
import { WakeChannel } from './wake.js';
import { RedisSpoolWriter, type RedisSink } from './writer.js';

/** How long readStats() waits for Redis before it answers with the cached reading. */
const STATS_WAIT_MS = 1000;
/**
 * After a reconnect the worker is woken twice: at once, and this much later. A worker
 * ignores wake-ups that follow its last failed lease within a second (src/deliver/worker.ts,
 * so a storm of them cannot hammer a Redis that is down); one that failed just before the
 * reconnect still gets the second wake-up instead of sleeping out its backoff (up to 30 s).
 */
const RECONNECT_REWAKE_MS = 1100;

export interface RedisQueueOptions {
  /** Every key starts with this (e.g. "postern:"). */
  keyPrefix: string;
  /** A lease not renewed for this long expires and another instance may take the message. */
  leaseTimeMs?: number;
  /** How often held leases are renewed; default a third of the lease time. */
  heartbeatMs?: number;
  /** After each commit, WAIT for this many replicas (0: don't). */
  waitReplicas?: number;
  waitTimeoutMs?: number;
  /** close() also closes the client (it was made for this queue). */
  ownsClient?: boolean;
  /** How readiness is measured (a timed PING); default every 2 s, slow after 2 s. */
  readyProbe?: ReadyProbeOptions;
  logger?: Logger;
}

export class RedisQueue implements QueueBackend, RedisSink {
  readonly keys: RedisKeys;
  /** Names this instance in leases and temp keys; unique per process and start. */
  readonly instanceId = newInstanceId();
  private readonly snapshot = new QueueSnapshot();
  private readonly leases: LeaseKeeper;
  private readonly wakeChannel: WakeChannel;
  private readonly probe: RedisReadyProbe;
  private readonly leaseTimeMs: number;
  private readonly wakeListeners: (() => void)[] = [];
  private rewake: NodeJS.Timeout | undefined;
  /**
   * Redis is back after an outage: beat at once (the instance is marked alive again, leases
   * of instances that died meanwhile go back to the due set) and wake the worker, whose
   * lease backoff would otherwise keep deliveries waiting until no mail arrives to wake it.
   */
  private readonly onReconnect = () => {
    void this.leases.beat().finally(() => this.wake());
    clearTimeout(this.rewake);
    this.rewake = setTimeout(() => this.wake(), RECONNECT_REWAKE_MS);
    this.rewake.unref();
  };

  constructor(
    readonly redis: Redis,
    private readonly options: RedisQueueOptions,
  ) {
    this.keys = new RedisKeys(options.keyPrefix);
    this.leaseTimeMs = options.leaseTimeMs ?? 60_000;
    const log = options.logger;
    this.leases = new LeaseKeeper(
      redis,
      this.keys,
      this.instanceId,
      this.leaseTimeMs,
      ({ snapshot, lost }) => {
        if (lost.length) log?.warn({ event: REDIS_EVENTS.leaseLost, queueIds: lost }, 'leases expired before they were renewed; another instance may deliver these');
        // A due time earlier than known (another instance saved or died) wakes the worker.
        if (this.snapshot.update(snapshot)) this.wake();
      },
      (err) => log?.error({ event: REDIS_EVENTS.error, err: (err as Error).message }, 'lease heartbeat failed'),
    );
    this.wakeChannel = new WakeChannel(redis, this.keys.wake, this.instanceId, () => this.wake());
    this.probe = new RedisReadyProbe(redis, options.readyProbe ?? { intervalMs: 2000, timeoutMs: 2000 });
  }

  async open(): Promise<{ recovered: number; cleaned: number }> {
    // Cleaned here first (every beat cleans too), so that the count of orphans is logged.
    const [snapshot, cleaned] = (await cleanScript.run(this.redis, [...this.keys.common(), this.keys.tmps], [this.keys.msgPrefix, this.keys.tmpPrefix, this.keys.instPrefix])) as [RawSnapshot, number];
    this.snapshot.update(snapshot);
    // The first beat marks this instance alive before anything of it can exist in Redis.
    await this.leases.beat();
    await this.wakeChannel.open();
    this.leases.start(this.options.heartbeatMs ?? Math.max(10, Math.floor(this.leaseTimeMs / 3)));
    this.probe.start();
    this.redis.on('ready', this.onReconnect);
    return { recovered: this.snapshot.stats().depth, cleaned };
  }

  /** For readiness (/readyz, and SMTP's 451 while false): Redis answered the last timed PING. */
  ready(): boolean {
    return this.probe.ready();
  }

  /**
   * Gives back the leases still held (main closes the queue after the worker stopped, so
   * only attempts cut off at the shutdown deadline are affected: those are delivered again,
   * as after a crash) and removes the instance's liveness key, so its unfinished temp
   * bodies are cleaned at the next heartbeat of any live instance (or the next open()).
   */
  async close(): Promise<void> {
    this.redis.off('ready', this.onReconnect);
    clearTimeout(this.rewake);
    this.probe.stop();
    await this.leases.stop();
    for (const id of this.leases.ids()) await this.release(id).catch(() => undefined);
    await this.redis.del(this.keys.instance(this.instanceId)).catch(() => undefined);
    await this.wakeChannel.close();
    if (this.options.ownsClient) await this.redis.quit().catch(() => this.redis.disconnect());
  }

  async receive(incoming: IncomingEnvelope): Promise<SpoolWriter> {
    return new RedisSpoolWriter(this, { ...incoming, id: incoming.id || newQueueId() });
  }

  // --- RedisSink: what the writer calls ---------------------------------------------

  async commitMessage(envelope: Envelope, tmpMember: string): Promise<void> {
    // The moment this client stops waiting, on the Redis clock: a commit run after it
    // would make a message whose sender was told 451 (see commitScript).
    const timeout = this.redis.options.commandTimeout;
    const deadline = timeout ? Date.now() + this.snapshot.clockOffsetMs + timeout : undefined;
    this.snapshot.update(await commitToRedis(this.redis, this.keys, this.instanceId, envelope, tmpMember, deadline));
    await waitForReplicas(this.redis, { replicas: this.options.waitReplicas ?? 0, timeoutMs: this.options.waitTimeoutMs ?? 1000 }, envelope.id);
    this.wake();
  }

  async uncommit(id: string): Promise<void> {
    try {
      await this.remove(id);
    } catch (err) {
      // Already leased by another instance: it is being delivered, and the client's retry
      // will make a duplicate (at-least-once) rather than a loss. Redis not answering: if
      // it ran the commit in time, the same; if not, the commit is refused when it runs late.
      const leased = err instanceof LeaseLostError;
      this.options.logger?.warn({ event: REDIS_EVENTS.error, queueId: id, err: (err as Error).message }, leased ? 'unconfirmed commit could not be undone: already leased elsewhere' : 'unconfirmed commit could not be undone: Redis did not answer');
      if (!leased) throw err;
    }
  }

  // --- the worker's side ------------------------------------------------------------

  async lease(now: number, limit: number): Promise<QueuedMessage[]> {
    if (limit <= 0) return [];
    const out: QueuedMessage[] = [];
    const snapshot = await this.leases.take(now, limit, ([id, lease, envelopeJson, stateJson]) => {
      try {
        out.push({ ...decodeMessage(id, envelopeJson, stateJson), lease });
        return true;
      } catch (err) {
        // Not renewed, so the lease runs out and the error is logged again each time:
        // visible to the operator, and nothing is deleted.
        this.options.logger?.error({ event: REDIS_EVENTS.error, queueId: id, err: (err as Error).message }, 'unreadable message in Redis');
        return false;
      }
    });
    this.snapshot.update(snapshot);
    return out;
  }

  /** One message by id, leased to this instance unless someone holds it (admin changes). */
  async claim(id: string): Promise<QueuedMessage | undefined> {
    const { snapshot, row } = await this.leases.claim(id);
    this.snapshot.update(snapshot);
    if (!row) return undefined;
    try {
      return { ...decodeMessage(row[0], row[2], row[3]), lease: row[1] };
    } catch (err) {
      await this.release(id, row[1]).catch(() => undefined);
      throw err;
    }
  }

  /** Gives back a lease this instance holds (`lease`, else whichever it holds on the message); one it no longer holds is left alone. */
  async release(id: string, lease?: string): Promise<void> {
    if (!this.leases.has(id, lease)) return;
    this.snapshot.update(await this.leases.settle('release', id, lease));
    this.wake();
  }

  async save(id: string, state: DeliveryState, lease?: string): Promise<void> {
    const next = nextAttemptOf(state);
    if (next === undefined) return this.remove(id, lease);
    this.snapshot.update(await this.leases.settle('save', id, lease, JSON.stringify(state), dueField(next)));
    this.wake();
  }

  async remove(id: string, lease?: string): Promise<void> {
    this.snapshot.update(await this.leases.settle('remove', id, lease));
  }

  openBody(id: string): Promise<Readable> {
    return openBodyStream(this.redis, this.keys.body(id), id);
  }

  get(id: string): Promise<QueuedMessage | undefined> {
    return getMessage(this.redis, this.keys, id);
  }

  list(): Promise<QueuedMessage[]> {
    return listMessages(this.redis, this.keys);
  }

  listPage(after: ListPosition | undefined, limit: number): Promise<MessagePage> {
    return listPage(this.redis, this.keys, after, limit);
  }

  /** Cached: refreshed by every operation of this instance and by each heartbeat. */
  stats(): QueueStats {
    return this.snapshot.stats();
  }

  /**
   * Read from Redis now (for a metrics scrape: the cached reading can be a heartbeat old
   * on an instance that has been idle, e.g. after another one deleted messages). Never
   * fails: when Redis does not answer within STATS_WAIT_MS, the cached reading, so a
   * scrape is not held for a whole commandTimeout.
   */
  async readStats(): Promise<QueueStats> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, STATS_WAIT_MS)));
    const fresh = statsScript.run(this.redis, this.keys.common(), [this.keys.msgPrefix]).then((raw) => void this.snapshot.update(raw as RawSnapshot));
    await Promise.race([fresh, late]).catch(() => undefined).finally(() => clearTimeout(timer));
    return this.snapshot.stats();
  }

  /**
   * Cached like stats(): the earliest due time Redis reported at this instance's last
   * operation or heartbeat. Other instances' commits and saves arrive as wake-ups (pub/sub),
   * after which the worker leases and so refreshes it.
   */
  nextDueAt(): number | undefined {
    return this.snapshot.nextDueAt();
  }

  onWake(listener: () => void): void {
    this.wakeListeners.push(listener);
  }

  private wake(): void {
    for (const l of this.wakeListeners) l();
  }
}
