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
  /**
   * Message id → fencing token of the lease this instance holds on it now (the heartbeat
   * renews them). One per message: should a lease of this instance run out and the
   * message be taken again here, the newer token replaces it. An attempt settles with the
   * token of its own lease, which travels with it (QueuedMessage.lease), never with this
   * map's: a stale attempt (its lease ran out meanwhile) or a write of its state made again
   * later (src/deliver/unsaved.ts) must present the lease it was made under, so that Redis
   * refuses it once that lease is gone, instead of taking it on the newer lease this
   * instance holds on the same message, or with '' once nobody holds one.
   */
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

  /** This instance holds a lease on the message; with `token`, that lease. */
  has(id: string, token?: string): boolean {
    return token === undefined ? this.held.has(id) : this.held.get(id) === token;
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
    // A newer lease replaces an older one of this instance on the message (Redis ended that one).
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
   * Settles a message with the token of the lease it was taken with; without one, with the
   * lease this instance holds on it now, else '' (a message it never leased, e.g. undoing
   * its own unconfirmed commit; works only while nobody holds a lease on it).
   */
  async settle(mode: 'save' | 'release' | 'remove', id: string, token = this.held.get(id) ?? '', state = '', due = ''): Promise<RawSnapshot> {
    const keys = [...this.keys.common(), this.keys.msg(id), this.keys.body(id)];
    try {
      const snapshot = (await settleScript.run(this.redis, keys, [this.keys.msgPrefix, mode, id, token, state, due, this.keys.wake, this.instanceId])) as RawSnapshot;
      this.forget(id, token);
      return snapshot;
    } catch (err) {
      // Refused because the lease or the message is gone: the token is dead. Any other
      // failure (Redis unreachable, a command timed out, Redis refused the command) leaves
      // the outcome unknown, and the lease stops being renewed all the same: were it
      // renewed, the heartbeat would keep it forever once Redis is back should nobody
      // settle it again. Not renewed, it expires after leaseTime if Redis still has it,
      // and any instance takes the message again: an attempt whose result could not be
      // recorded is repeated, as after a crash (at-least-once). A later settle with the
      // same token (the worker writing the attempt's state again) is accepted while the
      // lease is still this one (the settle did not run and the lease has not run out),
      // refused once the settle ran after all or the message was taken again.
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

  /** The lease `token` is no longer renewed: settled, refused, lost, or its outcome unknown. A newer lease on the message stays. */
  private forget(id: string, token: string): void {
    if (token && this.held.get(id) === token) this.held.delete(id);
  }
}
