import type { PosternConfig } from '../config/schema.js';
import { connectRedis } from '../queue/redis/connect.js';
import { newInstanceId } from '../queue/redis/instance-id.js';
import type { EventBus } from './bus.js';
import { EVENTS, type Logger } from './logger.js';
import { BacklogReport, MAX_PENDING_PER_HOOK } from './webhooks-backlog.js';
import { configuredHooks, OUTBOX_FLUSH_MS, subscribeHooks, type Hook } from './webhooks-hooks.js';
import { RedisDispatcher } from './webhooks-redis-dispatch.js';
import { RedisOutbox } from './webhooks-redis-outbox.js';
import { addKeptEvents, keepUnsent } from './webhooks-redis-unsent.js';
import { webhookTallyOf } from './webhooks-tally.js';

/** How often an instance looks for deliveries other instances left (rescheduled, or of one that died). */
const POLL_MS = 1000;

export interface RedisWebhooksOptions {
  /** This process's spool shard, or `primary`: some events only one process sends (webhooks-events.ts). */
  shard: number | string;
  /** Where events Redis did not take before a stop are kept for the next start (webhooks-redis-unsent.ts). */
  dataDir: string;
  /** Deliveries kept waiting per webhook, all instances together. Default MAX_PENDING_PER_HOOK. */
  maxPendingPerHook?: number | undefined;
  pollMs?: number | undefined;
}

/**
 * Webhooks with queue.backend: redis: the outbox is on the shared Redis (its own
 * connection, under <redis.keyPrefix>wh:) and every instance sends from it, so an event
 * is delivered even when the instance that recorded it dies first. Without webhooks
 * configured nothing connects: deliveries left by other instances are theirs to send.
 * Events still waiting for Redis at a stop are kept on disk and written at the next start.
 */
export async function startRedisWebhooks(config: PosternConfig, bus: EventBus, logger: Logger, o: RedisWebhooksOptions): Promise<{ close(): Promise<void> }> {
  if (!config.webhooks.length) return { close: async () => undefined };
  const log = logger.child({ component: 'webhooks' });
  const redis = await connectRedis(config.redis, logger);
  const hooks = configuredHooks(config);
  const maxPending = o.maxPendingPerHook ?? MAX_PENDING_PER_HOOK;
  // Deliveries given up for the bound, logged per webhook as the file outbox does: one line for many.
  const reports = new Map<string, BacklogReport>();
  const outbox = new RedisOutbox(redis, `${config.redis.keyPrefix}wh:`, hooks, {
    flushIntervalMs: OUTBOX_FLUSH_MS,
    maxPendingPerHook: maxPending,
    onError(err, failures) {
      if (failures === 1 || failures % 50 === 0) log.error({ event: EVENTS.webhookFailed, reason: 'outbox write to Redis failed', err: err.message, failures }, 'webhook outbox write failed; events are kept in memory and retried');
    },
    onDropped(hook, count) {
      let report = reports.get(hook);
      if (!report) reports.set(hook, (report = new BacklogReport(log, hooks.get(hook)?.host, maxPending)));
      report.add(count);
    },
    onExpired(hook, count) {
      logExpired(log, hooks.get(hook), count);
    },
  });
  const dispatcher = new RedisDispatcher(hooks, outbox, log, { pollMs: o.pollMs ?? POLL_MS, owner: newInstanceId() });
  await addKeptEvents(o.dataDir, outbox, () => dispatcher.wake()).catch((err: Error) => {
    // Not a reason to refuse mail: the files stay for the next start.
    log.error({ event: EVENTS.webhookFailed, reason: 'cannot read the webhook events kept on disk at the last stop', err: err.message }, 'webhook events kept on disk not read');
  });
  dispatcher.wake();
  const unsubscribe = subscribeHooks(bus, hooks, (e) => outbox.add(e, () => dispatcher.wake()), log, 'outbox full: Redis has been failing', o.shard);
  const unbar = bus.addBarrier(() => outbox.flush());
  return {
    async close() {
      unbar();
      unsubscribe();
      await dispatcher.close();
      const unsent = await outbox.close();
      for (const report of reports.values()) report.flush();
      await redis.quit().catch(() => redis.disconnect());
      if (unsent.length) await keepUnsent(log, hooks, o.dataDir, o.shard, unsent);
    },
  };
}

/** Deliveries the lease script found expired in Redis (every instance down past giveUpAfter + 1 day): given up, counted, in one line. */
function logExpired(log: Logger, hook: Hook | undefined, count: number): void {
  webhookTallyOf(log).gaveUpDeliveries(hook?.host, count);
  log.error({ event: EVENTS.webhookGaveUp, host: hook?.host, count, reason: 'expired in the Redis outbox: no instance took them within retry.giveUpAfter + 1 day' }, `${count} webhook deliveries given up: expired in Redis`);
}
