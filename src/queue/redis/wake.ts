import type { Redis } from 'ioredis';

/**
 * Wake-ups across instances. The scripts PUBLISH the sender's instance id on the wake
 * channel when a message becomes due (commit, save, release, reclaimed lease); every
 * other instance's subscriber calls its local wake so its worker leases now instead of
 * at its next timer. A subscribed connection can run nothing else, hence a duplicate of
 * the client. Missed messages (while disconnected) only delay work: the worker's timer
 * and the heartbeat's refreshed due time still find it.
 *
 * The channel is subscribed again by this class on every 'ready', not by ioredis's
 * autoResubscribe: the library's own re-SUBSCRIBE runs inside its ready handler and
 * nobody awaits it, so when Redis drops again at that moment (the client has no offline
 * queue) its rejection is unhandled, and an unhandled rejection ends the process.
 */
export class WakeChannel {
  private subscriber: Redis | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly channel: string,
    private readonly instanceId: string,
    private readonly onWake: () => void,
  ) {}

  async open(): Promise<void> {
    const sub = this.redis.duplicate({ autoResubscribe: false });
    this.subscriber = sub;
    sub.on('error', () => undefined); // reconnects by itself; the main client reports outages
    if (sub.status === 'wait') await sub.connect();
    sub.on('message', (channel: string, sender: string) => {
      if (channel === this.channel && sender !== this.instanceId) this.onWake();
    });
    await sub.subscribe(this.channel);
    // After the first connection: a failed SUBSCRIBE means the connection dropped again,
    // and the next 'ready' tries once more.
    sub.on('ready', () => {
      if (this.subscriber === sub) sub.subscribe(this.channel).catch(() => undefined);
    });
  }

  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = undefined;
    await sub?.quit().catch(() => sub.disconnect());
  }
}
