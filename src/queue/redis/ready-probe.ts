import type { Redis } from 'ioredis';

export interface ReadyProbeOptions {
  /** A PING this often. */
  intervalMs: number;
  /** A PING not answered within this long makes Redis not ready until one is. */
  timeoutMs: number;
}

/**
 * Whether Redis answers, measured rather than assumed. A connection's 'ready' status only
 * says the socket is open: a Redis that hangs (stopped, swapping, a script that never
 * ends) or sits behind a partition keeps it open while every command waits. So a PING
 * goes out every intervalMs on the queue's own connection (behind the commands it
 * carries, which is what a commit would wait for) and Redis counts as ready only while
 * the last one came back in time. A PING still out blocks the next one: a hung Redis
 * gets one PING, not one per interval.
 */
export class RedisReadyProbe {
  private answered = true;
  private inFlight = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onReady = () => this.probe();

  constructor(
    private readonly redis: Redis,
    private readonly o: ReadyProbeOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.probe(), this.o.intervalMs);
    this.timer.unref();
    // Back after a reconnect: ask at once instead of at the next interval.
    this.redis.on('ready', this.onReady);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.redis.off('ready', this.onReady);
  }

  ready(): boolean {
    return this.answered && this.redis.status === 'ready';
  }

  private probe(): void {
    if (this.inFlight) return;
    this.inFlight = true;
    const late = setTimeout(() => (this.answered = false), this.o.timeoutMs);
    late.unref();
    const started = Date.now();
    void this.redis.ping().then(
      () => (this.answered = Date.now() - started <= this.o.timeoutMs),
      () => (this.answered = false),
    ).finally(() => {
      clearTimeout(late);
      this.inFlight = false;
    });
  }
}
