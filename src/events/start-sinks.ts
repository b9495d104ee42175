import { closeInTurn } from '../common/close-in-turn.js';
import type { PosternConfig } from '../config/schema.js';
import { startAuditTrail, type AuditTrail } from './audit.js';
import { eventBusOf, type Logger } from './logger.js';
import { startWebhooks } from './webhooks.js';

export interface EventSinks {
  /** The audit trail (none with audit.enabled: false): its state for readiness and metrics. */
  audit?: AuditTrail | undefined;
  /** Writes what the audit trail holds in memory now (tests, and before a look at the trail). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The durable subscribers of the event bus for one gateway process: the audit trail and
 * the webhook outbox. Started before anything else logs, so the trail sees the start.
 */
export async function startEventSinks(config: PosternConfig, dataDir: string, shard: number | string, logger: Logger): Promise<EventSinks> {
  const bus = eventBusOf(logger);
  const audit = config.audit.enabled ? await startAuditTrail({ dataDir, shard, bus, logger, flushInterval: config.audit.flushInterval }) : undefined;
  const webhooks = await startWebhooks({ config, dataDir, shard, bus, logger }).catch(async (err: Error) => {
    await audit?.close();
    throw err;
  });
  return {
    audit,
    async flush() {
      await audit?.flush();
    },
    close: () => closeInTurn([() => webhooks.close(), () => audit?.close()]),
  };
}
