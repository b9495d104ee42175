import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { QueueBackend } from '../queue/backend.js';
import { enqueueLocal } from '../queue/enqueue.js';
import type { Envelope } from '../types.js';
import { buildDsn, readHeaderBlock, type FailedRecipient } from './dsn.js';

/**
 * Durably queues a non-delivery report for the failed recipients, unless the original
 * came from the null sender or was itself a report (RFC 5321 §4.5.5: never bounce a
 * bounce). Resolves with the report's queue id, or undefined when none is due.
 */
export async function enqueueDsn(opts: { config: PosternConfig; queue: QueueBackend; log: Logger; original: Envelope; failed: FailedRecipient[] }): Promise<string | undefined> {
  const { config, queue, log, original, failed } = opts;
  if (!original.mailFrom || original.origin === 'dsn') {
    log.info({ event: EVENTS.dsnSuppressed, queueId: original.id, failed: failed.length, reason: original.origin === 'dsn' ? 'report about a report' : 'null sender' }, 'no bounce report sent');
    return undefined;
  }
  const headers = await readHeaderBlock(await queue.openBody(original.id));
  const report = buildDsn({ hostname: config.hostname, original, failed, originalHeaders: headers });
  const stored = await enqueueLocal(queue, { hostname: config.hostname, from: '', to: [original.mailFrom], raw: report, origin: 'dsn', sessionId: `dsn-${original.id}` });
  log.info({ event: EVENTS.dsnQueued, queueId: original.id, dsnQueueId: stored.id, to: original.mailFrom, failed: failed.map((f) => f.rcpt) }, 'bounce report queued');
  return stored.id;
}
