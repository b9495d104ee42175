import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys.js';
import { heartbeatScript } from './scripts.js';
import type { RawSnapshot } from './snapshot.js';

export interface HeartbeatResult {
  snapshot: RawSnapshot;
  /** Leases this instance thought it held but that expired and went to someone else. */
  lost: string[];
}

/**
 * The leases this instance holds (message id → fencing token) and the heartbeat that
 * keeps them. A beat renews every held lease to now + leaseTime on the Redis clock and
 * marks the instance alive for as long; it runs every `intervalMs` (a third of the lease
 * time by default), so two missed beats still leave the lease in place. An instance that
 * dies stops beating: its leases expire and the next lease() or beat anywhere returns the
 * messages to the due set.
 */
export class LeaseKeeper {
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

  get size(): number {
    return this.held.size;
  }

  hold(id: string, token: string): void {
    this.held.set(id, token);
  }

  /** The token to settle a message with: '' when this instance holds no lease on it. */
  token(id: string): string {
    return this.held.get(id) ?? '';
  }

  has(id: string): boolean {
    return this.held.has(id);
  }

  drop(id: string): void {
    this.held.delete(id);
  }

  ids(): string[] {
    return [...this.held.keys()];
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
      const [snapshot, lost] = (await heartbeatScript.run(this.redis, [...this.keys.common(), this.keys.instance(this.instanceId)], [
        this.keys.msgPrefix,
        this.leaseTimeMs,
        this.keys.wake,
        this.instanceId,
        ...[...sent].flat(),
      ])) as [RawSnapshot, string[]];
      // Only drop what was lost under the token we sent: a message released and leased
      // again meanwhile carries a new token that is still good.
      for (const id of lost) if (this.held.get(id) === sent.get(id)) this.held.delete(id);
      this.onBeat({ snapshot, lost });
    } catch (err) {
      // Redis unreachable: the leases run down; whoever holds them when it is back wins.
      this.onError(err);
    }
  }
}
