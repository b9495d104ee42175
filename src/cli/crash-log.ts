import type { Logger } from '../events/logger.js';
import { EVENTS } from '../events/logger.js';

/**
 * The last line of a process that hit a bug: an exception nobody caught or a rejection
 * nobody handled. Node would print the stack to stderr and exit; ops tail the JSON log,
 * so the same goes there as `gateway.crash` first. The process still exits (1): its state
 * is unknown, every acknowledged message is on the spool, and the primary (or the
 * service manager of a single process) starts it again.
 */
export function logCrashes(logger: Logger): void {
  process.once('uncaughtException', (err: Error, origin: string) => {
    logger.fatal({ event: EVENTS.crash, pid: process.pid, origin, err: err?.message ?? String(err), stack: err?.stack }, 'crashed: exiting');
    logger.flush();
    process.exitCode = 1;
    // A moment for the log line to leave; then out, whatever else is still pending.
    setTimeout(() => process.exit(1), 50).unref();
    // Nothing else runs on a process in this state.
    process.on('uncaughtException', () => undefined);
  });
}
