import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys.js';
import { claimScript, heartbeatScript, leaseScript, settleScript } from './scripts.js';
import type { RawSnapshot } from './snapshot.js';

export interface HeartbeatResult {
  snapshot: RawSnapshot;
  /** Leases this instance thought it held but that expired and went to someone else. */
  lost: string[];
}

/** A leased message as the lease script returns it: id, token, envelope JSON, state JSON. */
export type LeasedRow = [string, string, string, string];

/**
 * Everything done under a lease, from this instance's side: taking due messages, the
 * heartbeat that keeps them, and settling them (save / release / remove) with the
 * fencing token they were taken with.
 *
 * A beat renews every held lease to now + leaseTime on the Redis clock and marks the
 * instance alive for as long; it runs every `intervalMs` (a third of the lease time by
 * default), so two missed beats still leave the lease in place. An instance that dies
 * stops beating: its leases expire and the next lease() or beat anywhere returns the
 * messages to the due set, and the next beat anywhere removes its half-received bodies.
 */
export class LeaseKeeper {
  /** Message id → fencing token of the leases this instance holds. */
  private readonly held = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly instanceId: string,
    private readonly leaseTimeMs: number,
    private readonly onBeat: (result: HeartbeatResult) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  has(id: string): boolean {
    return this.held.has(id);
  }

  ids(): string[] {
    return [...this.held.keys()];
  }

  /**
   * Takes up to `limit` messages due by `now`. `accept` decides per row whether it is
   * kept (an unreadable one is not: left unrenewed, its lease runs out).
   */
  async take(now: number, limit: number, accept: (row: LeasedRow) => boolean): Promise<RawSnapshot> {
    const args = [this.keys.msgPrefix, now, limit, this.leaseTimeMs, this.instanceId];
    const [snapshot, rows] = (await leaseScript.run(this.redis, [...this.keys.common(), this.keys.fence], args)) as [RawSnapshot, LeasedRow[]];
    for (const row of rows) if (accept(row)) this.held.set(row[0], row[1]);
    return snapshot;
  }

  /** Leases one message by id when nobody holds it (see claimScript). */
  async claim(id: string): Promise<{ snapshot: RawSnapshot; row?: LeasedRow | undefined }> {
    const [snapshot, row] = (await claimScript.run(this.redis, [...this.keys.common(), this.keys.fence], [this.keys.msgPrefix, id, this.leaseTimeMs, this.instanceId])) as [RawSnapshot, LeasedRow | null | false];
    if (row) this.held.set(row[0], row[1]);
    return { snapshot, row: row || undefined };
  }

  /**
   * Settles a message with this instance's token for it ('' when it holds none, which
   * only works while nobody holds a lease on it).
   */
  async settle(mode: 'save' | 'release' | 'remove', id: string, state = '', due = ''): Promise<RawSnapshot> {
    const token = this.held.get(id) ?? '';
    const keys = [...this.keys.common(), this.keys.msg(id), this.keys.body(id)];
    try {
      const snapshot = (await settleScript.run(this.redis, keys, [this.keys.msgPrefix, mode, id, token, state, due, this.keys.wake, this.instanceId])) as RawSnapshot;
      this.forget(id, token);
      return snapshot;
    } catch (err) {
      // Refused (the lease or the message is gone): this instance holds it no more. Any
      // other failure (Redis unreachable, a command timed out) leaves the outcome unknown,
      // and the lease is forgotten all the same: were it kept, the heartbeat would renew
      // it forever once Redis is back and nobody would ever retry the message. Forgotten,
      // it expires after leaseTime if Redis still has it, and any instance takes the
      // message again: an attempt whose result could not be recorded is repeated, as
      // after a crash (at-least-once). Retrying the settle later instead would keep an
      // obligation in memory that a crash loses anyway; the fencing token already makes
      // a late reply or a stale holder harmless.
      this.forget(id, token);
      throw err;
    }
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.beat(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
  }

  /** One beat; a beat still running is joined rather than doubled. */
  beat(): Promise<void> {
    this.beating ??= this.beatOnce().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async beatOnce(): Promise<void> {
    const sent = new Map(this.held);
    try {
      const [snapshot, lost] = (await heartbeatScript.run(this.redis, [...this.keys.common(), this.keys.instance(this.instanceId), this.keys.tmps], [
        this.keys.msgPrefix,
        this.leaseTimeMs,
        this.keys.wake,
        this.instanceId,
        this.keys.tmpPrefix,
        this.keys.instPrefix,
        ...[...sent].flat(),
      ])) as [RawSnapshot, string[]];
      for (const id of lost) this.forget(id, sent.get(id) ?? '');
      this.onBeat({ snapshot, lost });
    } catch (err) {
      // Redis unreachable: the leases run down; whoever holds them when it is back wins.
      this.onError(err);
    }
  }

  /** Drops a lease, unless it has been replaced meanwhile (released and taken again). */
  private forget(id: string, token: string): void {
    if (token && this.held.get(id) === token) this.held.delete(id);
  }
}
