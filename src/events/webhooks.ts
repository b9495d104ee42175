import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import type { EventBus } from './bus.js';
import { EVENTS, type Logger } from './logger.js';
import { logBacklogGaveUp, MAX_PENDING_PER_HOOK } from './webhooks-backlog.js';
import { Dispatcher } from './webhooks-dispatch.js';
import { configuredHooks, OUTBOX_FLUSH_MS, subscribeHooks } from './webhooks-hooks.js';
import { Outbox } from './webhooks-outbox.js';
import { startRedisWebhooks } from './webhooks-redis.js';

export interface Webhooks {
  /** Stops taking events and sending; what is not delivered stays in the outbox for the next start. */
  close(): Promise<void>;
}

export interface WebhooksOptions {
  config: PosternConfig;
  dataDir: string;
  /** The worker's spool shard: each process has its own outbox (fs backend). */
  shard: number | string;
  bus: EventBus;
  logger: Logger;
  /** Deliveries kept waiting per webhook (per process in files, in all on Redis); tests set a small one. Default MAX_PENDING_PER_HOOK. */
  maxPendingPerHook?: number | undefined;
}

/**
 * Webhooks: each bus event a webhook subscribes to is written to the outbox and, once
 * that is durable, POSTed signed. The outbox follows the queue: with queue.backend: redis
 * it is on the shared Redis, so that any instance delivers what another recorded
 * (src/events/webhooks-redis.ts); otherwise a file outbox per process under
 * <dataDir>/webhooks/<shard>/.
 */
export async function startWebhooks(o: WebhooksOptions): Promise<Webhooks> {
  if (o.config.queue.backend === 'redis') return startRedisWebhooks(o.config, o.bus, o.logger, { shard: o.shard, dataDir: o.dataDir, maxPendingPerHook: o.maxPendingPerHook });
  const dir = join(o.dataDir, 'webhooks', String(o.shard));
  // Nothing configured and nothing left from an earlier configuration: nothing to do.
  if (!o.config.webhooks.length && !existsSync(dir)) return { close: async () => undefined };
  const log = o.logger.child({ component: 'webhooks' });
  const hooks = configuredHooks(o.config);
  const maxPending = o.maxPendingPerHook ?? MAX_PENDING_PER_HOOK;
  const { outbox, pending, dropped } = await Outbox.open(dir, {
    maxPendingPerHook: maxPending,
    flushIntervalMs: OUTBOX_FLUSH_MS,
    onError(err, failures) {
      if (failures === 1 || failures % 50 === 0) log.error({ event: EVENTS.webhookFailed, reason: 'outbox write failed', err: err.message, failures }, 'webhook outbox write failed; events are kept in memory and retried');
    },
  });
  for (const [hook, count] of dropped) logBacklogGaveUp(log, hooks.get(hook)?.host, count, maxPending);
  const dispatcher = new Dispatcher(hooks, outbox, log, maxPending);
  for (const p of pending) dispatcher.enqueue(p);
  const unsubscribe = subscribeHooks(o.bus, hooks, (e) => outbox.add(e, (p) => dispatcher.enqueue(p)), log, 'outbox full: the disk has been failing', o.shard);
  const unbar = o.bus.addBarrier(() => outbox.flush());
  return {
    async close() {
      unbar();
      unsubscribe();
      await dispatcher.close();
      await outbox.close();
    },
  };
}
