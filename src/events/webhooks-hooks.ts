import { createHash, randomUUID } from 'node:crypto';
import type { PosternConfig } from '../config/schema.js';
import { sanitizeFields } from './audit-sanitize.js';
import type { EventBus } from './bus.js';
import { EVENTS, type Logger } from './logger.js';
import { sendsEvent, subscriptionMatcher, webhookName } from './webhooks-events.js';
import type { OutboxEvent } from './webhooks-outbox.js';

/** One configured webhook, ready to send to. */
export interface Hook {
  id: string;
  url: string;
  /** For log lines: the URL's path or query may carry a token, the host does not. */
  host: string;
  secret: string;
  timeoutMs: number;
  retry: { initialDelay: number; maxDelay: number; giveUpAfter: number };
  matches(code: string): boolean;
}

/** Requests in flight per webhook (per process): a slow receiver holds up only its own deliveries. */
export const IN_FLIGHT_PER_HOOK = 4;

/** Group commit window of an outbox: the first attempt waits at most this for the write. */
export const OUTBOX_FLUSH_MS = 20;

/** A webhook's id in the outbox: the same url and events after a restart find their pending deliveries. */
export function hookId(url: string, events: string[]): string {
  return createHash('sha256').update(`${url}\n${[...events].sort().join(',')}`).digest('hex').slice(0, 16);
}

/** The configured webhooks by id. */
export function configuredHooks(config: PosternConfig): Map<string, Hook> {
  return new Map(
    config.webhooks.map((h) => {
      const id = hookId(h.url, h.events);
      return [id, { id, url: h.url, host: new URL(h.url).host, secret: h.secret, timeoutMs: h.timeout, retry: h.retry, matches: subscriptionMatcher(h.events) }] as const;
    }),
  );
}

/**
 * Turns each bus event a webhook subscribes to into one delivery per webhook, with an id
 * of its own (the Postern-Delivery header, what receivers de-duplicate on), and hands it
 * to the outbox. The listener only queues it: sending happens beside the mail flow.
 * `record` returns false when the outbox refused it (its storage has been failing).
 * `shard` is this process's (a number, or `primary`): some events only one process sends.
 */
export function subscribeHooks(bus: EventBus, hooks: Map<string, Hook>, record: (e: OutboxEvent) => boolean, log: Logger, refusal: string, shard: number | string): () => void {
  const targets = [...hooks.values()];
  let refused = 0;
  return bus.subscribe((e) => {
    const name = webhookName(e.event);
    const to = name && sendsEvent(e.event, shard) ? targets.filter((h) => h.matches(e.event)) : [];
    if (!name || !to.length) return;
    const data = sanitizeFields(e.fields);
    const time = new Date(e.time).toISOString();
    for (const h of to) {
      const id = randomUUID();
      const queued = record({ t: 'event', id, hook: h.id, event: name, at: e.time, payload: { id, event: name, code: e.event, time, data } });
      if (!queued && (++refused === 1 || refused % 1000 === 0)) log.error({ event: EVENTS.webhookFailed, host: h.host, webhookEvent: name, reason: refusal, refused }, 'webhook event dropped');
    }
  });
}
