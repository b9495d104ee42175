import { resolve } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import { isAudited } from './audit-events.js';
import { recordAuditEvents } from './audit.js';
import { createLogger, eventBusOf, type Logger } from './logger.js';

export interface CliAuditEvent {
  event: string;
  fields: Record<string, unknown>;
  time?: number | undefined;
}

/** Who ran a command: --by where the command has it, else the login (behind sudo, the real one). */
export const cliActor = (by?: string): string => by || process.env.SUDO_USER || process.env.USER || 'cli';

/**
 * Records what a command changed in the audit trail's "cli" chain (unless audit.enabled
 * is off). Called after the change: a change that failed is not recorded as made. When
 * the trail cannot be written the command must fail, so this throws saying the change
 * itself was made.
 */
export async function auditCliChange(config: PosternConfig, events: CliAuditEvent[]): Promise<void> {
  if (!config.audit.enabled || !events.length) return;
  try {
    await recordAuditEvents(resolve(config.dataDir), events);
  } catch (err) {
    throw new Error(`the change was made, but the audit trail could not record it: ${(err as Error).message}`);
  }
}

/**
 * Runs a change with a logger (printing nothing) whose audited events are recorded
 * afterwards: for code shared with the gateway and the admin API that logs its own
 * changes (legal holds, purge destructions). Recorded also when `fn` fails half way,
 * so what it did do is on record.
 */
export async function withCliAudit<T>(config: PosternConfig, fn: (log: Logger) => Promise<T>): Promise<T> {
  const log = createLogger('silent');
  const events: CliAuditEvent[] = [];
  const unsubscribe = eventBusOf(log).subscribe((e) => {
    if (isAudited(e.event)) events.push({ event: e.event, fields: { ...e.fields }, time: e.time });
  });
  let result: T;
  try {
    result = await fn(log);
  } catch (err) {
    unsubscribe();
    await auditCliChange(config, events).catch((auditErr: Error) => {
      throw new Error(`${(err as Error).message}; ${auditErr.message}`);
    });
    throw err;
  }
  unsubscribe();
  await auditCliChange(config, events);
  return result;
}
