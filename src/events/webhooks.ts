import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import { sanitizeFields } from './audit-sanitize.js';
import type { EventBus } from './bus.js';
import { EVENTS, type Logger } from './logger.js';
import { Dispatcher, type Hook } from './webhooks-dispatch.js';
import { subscriptionMatcher, webhookName } from './webhooks-events.js';
import { Outbox } from './webhooks-outbox.js';

export interface Webhooks {
  /** Stops taking events and sending; what is not delivered stays in the outbox for the next start. */
  close(): Promise<void>;
}

export interface WebhooksOptions {
  config: PosternConfig;
  dataDir: string;
  /** The worker's spool shard: each process has its own outbox. */
  shard: number | string;
  bus: EventBus;
  logger: Logger;
}

/** Group commit window of the outbox: the first attempt waits at most this for the disk. */
const OUTBOX_FLUSH_MS = 20;

/** A webhook's id in the outbox: the same url and events after a restart find their pending deliveries. */
export function hookId(url: string, events: string[]): string {
  return createHash('sha256').update(`${url}\n${[...events].sort().join(',')}`).digest('hex').slice(0, 16);
}

function toHook(h: PosternConfig['webhooks'][number]): Hook {
  return { id: hookId(h.url, h.events), url: h.url, host: new URL(h.url).host, secret: h.secret, timeoutMs: h.timeout, retry: h.retry, matches: subscriptionMatcher(h.events) };
}

/**
 * Webhooks: each bus event a webhook subscribes to is written to the outbox
 * (<dataDir>/webhooks/<shard>/) and, once that is durable, POSTed signed. The bus
 * listener only queues a line in memory; sending happens beside the mail flow.
 */
export async function startWebhooks(o: WebhooksOptions): Promise<Webhooks> {
  const dir = join(o.dataDir, 'webhooks', String(o.shard));
  // Nothing configured and nothing left from an earlier configuration: nothing to do.
  if (!o.config.webhooks.length && !existsSync(dir)) return { close: async () => undefined };
  const log = o.logger.child({ component: 'webhooks' });
  const hooks = new Map(o.config.webhooks.map((h) => [hookId(h.url, h.events), toHook(h)] as const));
  const { outbox, pending } = await Outbox.open(dir, {
    flushIntervalMs: OUTBOX_FLUSH_MS,
    onError(err, failures) {
      if (failures === 1 || failures % 50 === 0) log.error({ event: EVENTS.webhookFailed, reason: 'outbox write failed', err: err.message, failures }, 'webhook outbox write failed; events are kept in memory and retried');
    },
  });
  const dispatcher = new Dispatcher(hooks, outbox, log);
  for (const p of pending) dispatcher.enqueue(p);
  const targets = [...hooks.values()];
  let refused = 0;
  const unsubscribe = o.bus.subscribe((e) => {
    const name = webhookName(e.event);
    const to = name ? targets.filter((h) => h.matches(e.event)) : [];
    if (!name || !to.length) return;
    const data = sanitizeFields(e.fields);
    const time = new Date(e.time).toISOString();
    for (const h of to) {
      const id = randomUUID();
      const queued = outbox.add({ t: 'event', id, hook: h.id, event: name, at: e.time, payload: { id, event: name, code: e.event, time, data } }, (p) => dispatcher.enqueue(p));
      if (!queued && (++refused === 1 || refused % 1000 === 0)) log.error({ event: EVENTS.webhookFailed, host: h.host, webhookEvent: name, reason: 'outbox full: the disk has been failing', refused }, 'webhook event dropped');
    }
  });
  return {
    async close() {
      unsubscribe();
      await dispatcher.close();
      await outbox.close();
    },
  };
}
