import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { QueueBackend } from '../queue/backend.js';
import { enqueueLocal } from '../queue/enqueue.js';
import type { DeliveryState, Envelope, ProtectionMethod } from '../types.js';
import { buildDsn, readHeaderBlock, type FailedRecipient } from './dsn.js';

/**
 * Durably queues a non-delivery report for the failed recipients, unless the original
 * came from the null sender or was itself a report (RFC 5321 §4.5.5: never bounce a
 * bounce). Resolves with the report's queue id, or undefined when none is due.
 */
export async function enqueueDsn(opts: { config: PosternConfig; queue: QueueBackend; log: Logger; original: Envelope; state: DeliveryState; failed: FailedRecipient[] }): Promise<string | undefined> {
  const { config, queue, log, original, state, failed } = opts;
  const aboutReport = original.origin === 'dsn' || original.origin === 'dsn-protected';
  if (!original.mailFrom || aboutReport) {
    log.info({ event: EVENTS.dsnSuppressed, queueId: original.id, failed: failed.length, reason: aboutReport ? 'report about a report' : 'null sender' }, 'no bounce report sent');
    return undefined;
  }
  const headers = await readHeaderBlock(await queue.openBody(original.id));
  const wasProtected = sentProtected(state);
  const report = buildDsn({ hostname: config.hostname, original, failed, originalHeaders: headers, sentProtected: wasProtected });
  // About a protected message the report goes over verified TLS only (policy/planner.ts);
  // about any other it is decided by the policy like any message.
  const origin = wasProtected ? 'dsn-protected' : 'dsn';
  const stored = await enqueueLocal(queue, { hostname: config.hostname, from: '', to: [original.mailFrom], raw: report, origin, sessionId: `dsn-${original.id}` });
  log.info({ event: EVENTS.dsnQueued, queueId: original.id, dsnQueueId: stored.id, to: original.mailFrom, failed: failed.map((f) => f.rcpt), protected: wasProtected }, 'bounce report queued');
  return stored.id;
}

const PROTECTED_METHODS: ReadonlySet<ProtectionMethod> = new Set(['pgp', 'smime', 'portal', 'sms-portal']);

/**
 * Whether the original was (or was to be) sent protected, so its report withholds the
 * subject: the subject carried the tag, detectors found something (or could not scan it
 * all, or the inspection failed: what was not read may hold PHI), or any recipient's
 * decision chose a protected method (protect.pgp.protectSubject hides the subject inside
 * the PGP message). A message that was never inspected counts as protected: nothing says
 * its subject is harmless.
 */
export function sentProtected(state: DeliveryState): boolean {
  const i = state.inspection;
  if (!i || i.error || i.unscanned || i.subjectTagged || i.score > 0 || i.hits.length) return true;
  return state.recipients.some((r) => r.decision?.method !== undefined && PROTECTED_METHODS.has(r.decision.method));
}
