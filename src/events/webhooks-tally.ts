import { EventBus } from './bus.js';
import { eventBusOf, type Logger } from './logger.js';

/** The `webhook` label of a give-up whose webhook is no longer configured (its host is not known any more). */
export const UNCONFIGURED = 'unconfigured';

/**
 * What the webhook senders of one process counted, for the metrics: failed delivery
 * attempts by webhook (the receiver's host, as logged) and reason, and deliveries given
 * up by webhook. Kept per event bus (one per logger, so several gateways in one test
 * process each have their own) and counted where the attempt or give-up happens, not
 * read off the bus: the file outbox gives up stale deliveries as it is loaded, at the
 * very start, before the metrics subscribe to the bus (src/main.ts starts the event
 * sinks first), and those give-ups went uncounted.
 */
export class WebhookTally {
  readonly failedAttempts = new Map<string, { webhook: string; reason: string; count: number }>();
  readonly gaveUp = new Map<string, number>();

  failedAttempt(webhook: string, reason: string): void {
    const key = `${webhook}\n${reason}`;
    const row = this.failedAttempts.get(key);
    if (row) row.count++;
    else this.failedAttempts.set(key, { webhook, reason, count: 1 });
  }

  gaveUpDeliveries(webhook: string | undefined, count: number): void {
    const label = webhook ?? UNCONFIGURED;
    this.gaveUp.set(label, (this.gaveUp.get(label) ?? 0) + count);
  }
}

const tallies = new WeakMap<EventBus, WebhookTally>();

/** The tally of the process (the bus) a logger made by createLogger, or a child of one, belongs to. */
export function webhookTallyOf(of: Logger | EventBus): WebhookTally {
  const bus = of instanceof EventBus ? of : eventBusOf(of);
  let tally = tallies.get(bus);
  if (!tally) tallies.set(bus, (tally = new WebhookTally()));
  return tally;
}
