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
 *   stalled past its lease cannot overwrite the progress of the one that took over.
 *
 * Key layout: keys.ts. Redis connection, TLS and the persistence check: connect.ts,
 * durability.ts.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import type { Logger } from '../../events/logger.js';
import type { DeliveryState, Envelope, QueuedMessage } from '../../types.js';
import { initialState, nextAttemptOf, type IncomingEnvelope, type QueueBackend, type QueueStats, type SpoolWriter } from '../backend.js';
import { newQueueId } from '../ids.js';
import { openBodyStream } from './body-stream.js';
import { decodeMessage, dueField } from './codec.js';
import { RedisKeys } from './keys.js';
import { LeaseKeeper } from './leases.js';
import { LeaseLostError, NoMessageError } from './lua.js';
import { cleanScript, commitScript, leaseScript, settleScript } from './scripts.js';
import { QueueSnapshot, type RawSnapshot } from './snapshot.js';
import { WakeChannel } from './wake.js';
import { RedisSpoolWriter, type RedisSink } from './writer.js';

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
  logger?: Logger;
}

export class RedisQueue implements QueueBackend, RedisSink {
  readonly keys: RedisKeys;
  /** Names this instance in leases and temp keys; unique per process and start. */
  readonly instanceId = `${hostname().replace(/[^\w.-]/g, '_')}.${process.pid}.${randomBytes(4).toString('hex')}`;
  private readonly snapshot = new QueueSnapshot();
  private readonly leases: LeaseKeeper;
  private readonly wakeChannel: WakeChannel;
  private readonly leaseTimeMs: number;
  private readonly wakeListeners: (() => void)[] = [];

  constructor(
    readonly redis: Redis,
    private readonly options: RedisQueueOptions,
  ) {
    this.keys = new RedisKeys(options.keyPrefix);
    this.leaseTimeMs = options.leaseTimeMs ?? 60_000;
    this.leases = new LeaseKeeper(
      redis,
      this.keys,
      this.instanceId,
      this.leaseTimeMs,
      ({ snapshot, lost }) => {
        if (lost.length) this.options.logger?.warn({ event: 'queue.lease-lost', queueIds: lost }, 'leases expired before they were renewed; another instance may deliver these');
        this.takeSnapshot(snapshot, true);
      },
      (err) => this.options.logger?.error({ event: 'queue.redis-error', err: (err as Error).message }, 'lease heartbeat failed'),
    );
    this.wakeChannel = new WakeChannel(redis, this.keys.wake, this.instanceId, () => this.wake());
  }

  async open(): Promise<{ recovered: number; cleaned: number }> {
    // The first beat marks this instance alive before anything of it can exist in Redis.
    await this.leases.beat();
    await this.wakeChannel.open();
    const [snapshot, cleaned] = (await cleanScript.run(this.redis, [...this.keys.common(), this.keys.tmps], [this.keys.msgPrefix, this.keys.tmpPrefix, this.keys.instPrefix])) as [RawSnapshot, number];
    this.takeSnapshot(snapshot);
    this.leases.start(this.options.heartbeatMs ?? Math.max(10, Math.floor(this.leaseTimeMs / 3)));
    return { recovered: this.snapshot.stats().depth, cleaned };
  }

  /**
   * Gives back the leases still held (main closes the queue after the worker stopped, so
   * only attempts cut off at the shutdown deadline are affected: those are delivered again,
   * as after a crash) and removes the instance's liveness key, so its unfinished temp
   * bodies are cleaned by the next open() anywhere.
   */
  async close(): Promise<void> {
    await this.leases.stop();
    for (const id of this.leases.ids()) await this.release(id).catch(() => undefined);
    await this.redis.del(this.keys.instance(this.instanceId)).catch(() => undefined);
    await this.wakeChannel.close();
    if (this.options.ownsClient) await this.redis.quit().catch(() => undefined);
  }

  async receive(incoming: IncomingEnvelope): Promise<SpoolWriter> {
    return new RedisSpoolWriter(this, { ...incoming, id: incoming.id || newQueueId() });
  }

  // --- RedisSink: what the writer calls ---------------------------------------------

  async commitMessage(envelope: Envelope, tmpMember: string): Promise<void> {
    const { id } = envelope;
    const state = initialState(envelope, envelope.receivedAt);
    const keys = [...this.keys.common(), this.keys.tmpPrefix + tmpMember, this.keys.body(id), this.keys.msg(id), this.keys.tmps];
    const args = [this.keys.msgPrefix, JSON.stringify(envelope), JSON.stringify(state), dueField(nextAttemptOf(state)), envelope.receivedAt, id, envelope.size, tmpMember, this.keys.wake, this.instanceId];
    this.takeSnapshot((await commitScript.run(this.redis, keys, args)) as RawSnapshot);
    const wanted = this.options.waitReplicas ?? 0;
    if (wanted > 0) {
      const acked = await this.redis.wait(wanted, this.options.waitTimeoutMs ?? 1000);
      if (acked < wanted) throw new Error(`queue: only ${acked} of ${wanted} Redis replicas acknowledged message ${id} within ${this.options.waitTimeoutMs ?? 1000} ms`);
    }
    this.wake();
  }

  async uncommit(id: string): Promise<void> {
    try {
      await this.settle('remove', id);
    } catch (err) {
      // Already leased by another instance: it is being delivered, and the client's retry
      // will make a duplicate (at-least-once) rather than a loss.
      if (!(err instanceof LeaseLostError)) throw err;
      this.options.logger?.warn({ event: 'queue.redis-error', queueId: id }, 'unconfirmed commit could not be undone: already leased elsewhere');
    }
  }

  // --- the worker's side ------------------------------------------------------------

  async lease(now: number, limit: number): Promise<QueuedMessage[]> {
    if (limit <= 0) return [];
    const args = [this.keys.msgPrefix, now, limit, this.leaseTimeMs, this.instanceId];
    const [snapshot, rows] = (await leaseScript.run(this.redis, [...this.keys.common(), this.keys.fence], args)) as [RawSnapshot, [string, string, string, string][]];
    this.takeSnapshot(snapshot);
    const out: QueuedMessage[] = [];
    for (const [id, token, envelopeJson, stateJson] of rows) {
      try {
        out.push(decodeMessage(id, envelopeJson, stateJson));
        this.leases.hold(id, token);
      } catch (err) {
        // Not renewed, so the lease runs out and the error is logged again each time:
        // visible to the operator, and nothing is deleted.
        this.options.logger?.error({ event: 'queue.redis-error', queueId: id, err: (err as Error).message }, 'unreadable message in Redis');
      }
    }
    return out;
  }

  async release(id: string): Promise<void> {
    if (!this.leases.has(id)) return;
    await this.settle('release', id);
    this.wake();
  }

  async save(id: string, state: DeliveryState): Promise<void> {
    const next = nextAttemptOf(state);
    if (next === undefined) return this.remove(id);
    await this.settle('save', id, JSON.stringify(state), dueField(next));
    this.wake();
  }

  async remove(id: string): Promise<void> {
    await this.settle('remove', id);
  }

  openBody(id: string): Promise<Readable> {
    return openBodyStream(this.redis, this.keys.body(id), id);
  }

  async get(id: string): Promise<QueuedMessage | undefined> {
    const [envelopeJson, stateJson] = await this.redis.hmget(this.keys.msg(id), 'envelope', 'state');
    return envelopeJson === null ? undefined : decodeMessage(id, envelopeJson, stateJson);
  }

  /** Every committed message, oldest first, read in pages so a large queue is not one reply. */
  async list(): Promise<QueuedMessage[]> {
    const out: QueuedMessage[] = [];
    for (let start = 0; ; start += LIST_PAGE) {
      const ids = await this.redis.zrange(this.keys.received, String(start), String(start + LIST_PAGE - 1));
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hmget(this.keys.msg(id), 'envelope', 'state');
      const rows = ids.length ? ((await pipe.exec()) ?? []) : [];
      rows.forEach(([err, fields], i) => {
        const [envelopeJson, stateJson] = (fields ?? []) as (string | null)[];
        if (!err && envelopeJson) out.push(decodeMessage(ids[i] as string, envelopeJson, stateJson));
      });
      if (ids.length < LIST_PAGE) return out;
    }
  }

  /** Cached: refreshed by every operation of this instance and by each heartbeat. */
  stats(): QueueStats {
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

  private takeSnapshot(raw: RawSnapshot, wakeIfEarlier = false): void {
    if (this.snapshot.update(raw) && wakeIfEarlier) this.wake();
  }

  /** Runs the fenced settle script with this instance's token for the message. */
  private async settle(mode: 'save' | 'release' | 'remove', id: string, state = '', due = ''): Promise<void> {
    const token = this.leases.token(id);
    const keys = [...this.keys.common(), this.keys.msg(id), this.keys.body(id)];
    try {
      this.takeSnapshot((await settleScript.run(this.redis, keys, [this.keys.msgPrefix, mode, id, token, state, due, this.keys.wake, this.instanceId])) as RawSnapshot);
    } catch (err) {
      // Refused because the lease or the message is gone: this instance holds it no more.
      // Any other failure (Redis unreachable) keeps the lease, so a release can follow.
      if (err instanceof LeaseLostError || err instanceof NoMessageError) this.dropLease(id, token);
      throw err;
    }
    this.dropLease(id, token);
  }

  private dropLease(id: string, token: string): void {
    if (token && this.leases.token(id) === token) this.leases.drop(id);
  }
}

const LIST_PAGE = 500;
