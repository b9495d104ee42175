import { eventBusOf, type Logger } from './logger.js';

/**
 * How long a caller waits for the webhook outbox at most. A wait joins the batch being
 * written or the next one, written right after it (an idle outbox writes at once), so
 * this is only reached when the disk (or Redis) hangs or is failing: then mail goes on,
 * and those events wait in memory.
 */
const DURABLE_WAIT_MS = 2000;

/**
 * Resolves once the events this logger's bus published so far are stored by the
 * subscribers that keep them for later (the webhook outbox), so that a crash right after
 * the caller's next write cannot lose them. Never rejects: a failing outbox logs its own
 * failures and must never stop mail. A logger without a bus has nothing to wait for.
 */
export async function eventsDurable(logger: Logger): Promise<void> {
  let bus;
  try {
    bus = eventBusOf(logger);
  } catch {
    return;
  }
  await bus.durable(DURABLE_WAIT_MS);
}
