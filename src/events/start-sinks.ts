import type { PosternConfig } from '../config/schema.js';
import { startAuditTrail } from './audit.js';
import { eventBusOf, type Logger } from './logger.js';
import { startWebhooks } from './webhooks.js';

/**
 * The durable subscribers of the event bus for one gateway process: the audit trail and
 * the webhook outbox. Started before anything else logs, so the trail sees the start.
 */
export async function startEventSinks(config: PosternConfig, dataDir: string, shard: number, logger: Logger): Promise<{ flush(): Promise<void>; close(): Promise<void> }> {
  const bus = eventBusOf(logger);
  const audit = config.audit.enabled ? await startAuditTrail({ dataDir, shard, bus, logger, flushInterval: config.audit.flushInterval }) : undefined;
  const webhooks = await startWebhooks({ config, dataDir, shard, bus, logger });
  return {
    /** Writes what the audit trail holds in memory now (tests, and before a look at the trail). */
    async flush() {
      await audit?.flush();
    },
    async close() {
      await webhooks.close();
      await audit?.close();
    },
  };
}
