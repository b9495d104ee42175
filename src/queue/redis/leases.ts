import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys.js';
import { LeaseLostError, NoMessageError } from './lua.js';
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
  /** Message id → fencing token of the leases this instance holds (the heartbeat renews them). */
  private readonly held = new Map<string, string>();
  /**
   * Message id → token of a lease of this instance that ended with no known outcome: its
   * settle got no answer, or a beat found it gone. Not renewed; kept only so that a later
   * settle of the message here (the worker writing the attempt's state again,
   * src/deliver/unsaved.ts, or an attempt that ends after its lease ran out) presents it.
   * With '' instead, Redis would take the write whenever nobody holds a lease: a stale
   * state would replace the progress of whoever took the message since, and a save of a
   * message finished since would fail with NOMSG for ever. Dropped once Redis answers a
   * settle made with it. Per message id, like `held`, which comes first: should this
   * instance take the message again while such a write is still pending, the write
   * presents the newer lease (an attempt's token would have to travel with its state).
   */
  private readonly ended = new Map<string, string>();
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
    for (const row of rows) if (accept(row)) this.hold(row[0], row[1]);
    return snapshot;
  }

  /** Leases one message by id when nobody holds it (see claimScript). */
  async claim(id: string): Promise<{ snapshot: RawSnapshot; row?: LeasedRow | undefined }> {
    const [snapshot, row] = (await claimScript.run(this.redis, [...this.keys.common(), this.keys.fence], [this.keys.msgPrefix, id, this.leaseTimeMs, this.instanceId])) as [RawSnapshot, LeasedRow | null | false];
    if (row) this.hold(row[0], row[1]);
    return { snapshot, row: row || undefined };
  }

  /**
   * Settles a message with this instance's token for it: the lease it holds, else the one
   * that ended without an answer, else '' (a message it never leased, e.g. undoing its own
   * unconfirmed commit; works only while nobody holds a lease on it).
   */
  async settle(mode: 'save' | 'release' | 'remove', id: string, state = '', due = ''): Promise<RawSnapshot> {
    const token = this.held.get(id) ?? this.ended.get(id) ?? '';
    const keys = [...this.keys.common(), this.keys.msg(id), this.keys.body(id)];
    try {
      const snapshot = (await settleScript.run(this.redis, keys, [this.keys.msgPrefix, mode, id, token, state, due, this.keys.wake, this.instanceId])) as RawSnapshot;
      this.settled(id, token);
      return snapshot;
    } catch (err) {
      // Refused because the lease or the message is gone: the token is dead. Any other
      // failure (Redis unreachable, a command timed out, Redis refused the command) leaves
      // the outcome unknown, and the lease stops being renewed all the same: were it
      // renewed, the heartbeat would keep it forever once Redis is back should nobody
      // settle it again. Not renewed, it expires after leaseTime if Redis still has it,
      // and any instance takes the message again: an attempt whose result could not be
      // recorded is repeated, as after a crash (at-least-once). Its token is kept (ended)
      // for a later settle here: accepted while the lease is still this one (the settle
      // did not run and the lease has not run out), refused once the settle ran after all
      // or the message was taken again.
      if (err instanceof LeaseLostError || err instanceof NoMessageError) this.settled(id, token);
      else this.endUnanswered(id, token);
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
      for (const id of lost) this.endUnanswered(id, sent.get(id) ?? '');
      this.onBeat({ snapshot, lost });
    } catch (err) {
      // Redis unreachable: the leases run down; whoever holds them when it is back wins.
      this.onError(err);
    }
  }

  /** A new lease: it supersedes a token of this message that ended unanswered, which is forgotten (else kept for ever). */
  private hold(id: string, token: string): void {
    this.held.set(id, token);
    this.ended.delete(id);
  }

  /** Redis answered a settle made with `token`: nothing is left to settle with it. */
  private settled(id: string, token: string): void {
    if (!token) return;
    if (this.held.get(id) === token) this.held.delete(id);
    if (this.ended.get(id) === token) this.ended.delete(id);
  }

  /** Stops renewing a lease and keeps its token for a later settle (see `ended`), unless it has been replaced meanwhile (released and taken again). */
  private endUnanswered(id: string, token: string): void {
    if (!token || this.held.get(id) !== token) return;
    this.held.delete(id);
    this.ended.set(id, token);
  }
}
