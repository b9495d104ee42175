import { LeaseLostError } from '../queue/redis/lua.js';
import { EVENTS, type Logger } from './logger.js';
import { attemptDelivery, logGaveUp, pastGiveUpReason } from './webhooks-attempt.js';
import { IN_FLIGHT_PER_HOOK, type Hook } from './webhooks-hooks.js';
import type { OutboxEvent } from './webhooks-outbox.js';
import type { LeasedDelivery, RedisOutbox } from './webhooks-redis-outbox.js';

/**
 * A lease outlasts the attempt it covers: the POST is cut off at the webhook's timeout,
 * so no heartbeat is needed. A holder that dies mid-attempt is replaced once it expires,
 * and the delivery is sent again with the same id (at least once).
 */
const leaseMsOf = (hook: Hook) => 2 * hook.timeoutMs + 1000;

/**
 * Sends what the Redis outbox holds, for the webhooks this instance has: a few requests
 * at a time per webhook, each on a lease taken from Redis, retried by the same rules as
 * the file outbox (webhooks-attempt.ts) with the attempt count kept in Redis, so that
 * whichever instance takes a delivery next carries on its backoff. Woken at once by its
 * own events; otherwise it looks every pollMs (or at the next due time, if sooner) for
 * deliveries other instances left: rescheduled ones, and expired leases of one that died.
 */
export class RedisDispatcher {
  private readonly inFlight = new Map<string, number>();
  private readonly active = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private failures = 0;

  constructor(
    private readonly hooks: Map<string, Hook>,
    private readonly outbox: RedisOutbox,
    private readonly log: Logger,
    private readonly o: { pollMs: number; owner: string },
  ) {}

  /** Looks for due deliveries now (a look already running is followed by one more). */
  wake(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Stops leasing; waits for the attempts in flight (each bounded by its timeout) and records them. */
  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.pumping;
    await Promise.all([...this.active]);
  }

  private async pump(): Promise<void> {
    let next = Date.now() + this.o.pollMs;
    for (const hook of this.hooks.values()) {
      const free = IN_FLIGHT_PER_HOOK - (this.inFlight.get(hook.id) ?? 0);
      if (free <= 0) continue; // each attempt that ends looks again
      try {
        const { rows, nextDueAt } = await this.outbox.lease(hook, free, leaseMsOf(hook), this.o.owner);
        this.failures = 0;
        for (const d of rows) this.attempt(hook, d);
        if (nextDueAt !== undefined) next = Math.min(next, nextDueAt);
      } catch (err) {
        if (++this.failures === 1 || this.failures % 50 === 0) this.log.error({ event: EVENTS.webhookFailed, reason: 'cannot lease from the Redis outbox', err: (err as Error).message, failures: this.failures }, 'webhook outbox on Redis unavailable; deliveries wait');
      }
    }
    clearTimeout(this.timer);
    if (!this.stopped) this.timer = setTimeout(() => this.wake(), Math.max(0, next - Date.now())).unref();
  }

  private attempt(hook: Hook, d: LeasedDelivery): void {
    this.inFlight.set(hook.id, (this.inFlight.get(hook.id) ?? 0) + 1);
    const run = this.send(hook, d)
      .catch((err: unknown) => this.unrecorded(hook, d, err))
      .finally(() => {
        this.inFlight.set(hook.id, (this.inFlight.get(hook.id) ?? 1) - 1);
        this.active.delete(run);
        this.wake();
      });
    this.active.add(run);
  }

  private async send(hook: Hook, d: LeasedDelivery): Promise<void> {
    const attempt = d.attempts + 1;
    let event: OutboxEvent;
    try {
      event = JSON.parse(d.eventJson) as OutboxEvent;
    } catch {
      await this.outbox.done(d);
      return logGaveUp(this.log, hook, { id: d.id, event: 'unknown' }, d.attempts, 'outbox record in Redis is damaged');
    }
    // Too old by its turn (every instance was down, or it waited behind a slow receiver):
    // given up unsent, as the file outbox's dispatcher does (webhooks-dispatch.ts).
    if (Date.now() - event.at > hook.retry.giveUpAfter) {
      await this.outbox.done(d);
      return logGaveUp(this.log, hook, event, d.attempts, pastGiveUpReason(hook));
    }
    const outcome = await attemptDelivery(hook, event, attempt, this.log);
    if (outcome.t === 'retry') return this.outbox.retry(d, outcome.dueAt, attempt);
    await this.outbox.done(d);
    if (outcome.t === 'give-up') logGaveUp(this.log, hook, event, attempt, outcome.reason);
  }

  /** The attempt's result could not be recorded: its lease runs out and the delivery is attempted again. */
  private unrecorded(hook: Hook, d: LeasedDelivery, err: unknown): void {
    const taken = err instanceof LeaseLostError;
    this.log.warn(
      { event: EVENTS.webhookFailed, host: hook.host, delivery: d.id, reason: taken ? 'lease expired before the attempt was recorded' : 'could not record the attempt in Redis', err: (err as Error).message },
      'webhook attempt not recorded; the delivery will be attempted again with the same id',
    );
  }
}
