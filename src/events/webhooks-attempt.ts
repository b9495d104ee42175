import { EVENTS, type Logger } from './logger.js';
import type { Hook } from './webhooks-hooks.js';
import type { OutboxEvent } from './webhooks-outbox.js';
import { isDelivered, postWebhook, type PostResult } from './webhooks-post.js';
import { webhookTallyOf } from './webhooks-tally.js';

/** How long before giveUpAfter runs out the last try is made (a timer fires a little late). */
const LAST_TRY_MARGIN_MS = 100;

/** What follows from one attempt: recorded as done, tried again at dueAt, or given up. */
export type AttemptOutcome = { t: 'done'; status: number } | { t: 'retry'; dueAt: number } | { t: 'give-up'; reason: string };

/**
 * One signed POST of one delivery and the retry rule both outboxes follow: a 2xx is done;
 * anything else is tried again after initialDelay, doubling up to maxDelay, with a last
 * try just before giveUpAfter from the event runs out. `attempt` counts from 1.
 * Logs the attempt (webhook.delivered / webhook.failed) and counts a failed one (the last,
 * given up, included) for postern_webhook_failures_total; the caller records the outcome.
 */
export async function attemptDelivery(hook: Hook, e: OutboxEvent, attempt: number, log: Logger): Promise<AttemptOutcome> {
  const started = Date.now();
  const result = await postWebhook({ url: hook.url, secret: hook.secret, event: e.event, deliveryId: e.id, body: JSON.stringify(e.payload), timeoutMs: hook.timeoutMs });
  const line = { host: hook.host, webhookEvent: e.event, delivery: e.id, attempt, status: result.status, err: result.error };
  if (isDelivered(result)) {
    log.info({ event: EVENTS.webhookDelivered, ...line, ms: Date.now() - started }, 'webhook delivered');
    return { t: 'done', status: result.status as number };
  }
  webhookTallyOf(log).failedAttempt(hook.host, failureReason(result));
  const now = Date.now();
  const delay = Math.min(hook.retry.initialDelay * 2 ** (attempt - 1), hook.retry.maxDelay);
  // The last try comes just before giveUpAfter runs out, not a whole backoff step before
  // it: with 5s doubling to 1h and giveUpAfter 1h, the delivery was given up at 42 minutes.
  // Just before, because a try that comes due after it is given up unsent.
  const lastTryAt = e.at + hook.retry.giveUpAfter - LAST_TRY_MARGIN_MS;
  const dueAt = Math.min(now + delay, lastTryAt);
  if (dueAt <= now) return { t: 'give-up', reason: `no 2xx answer in ${attempt} attempt(s); last: ${result.status ?? result.error}` };
  log.warn({ event: EVENTS.webhookFailed, ...line, nextAttemptAt: new Date(dueAt).toISOString() }, 'webhook delivery failed; will retry');
  return { t: 'retry', dueAt };
}

/** The reason of a delivery given up unsent: giveUpAfter had passed when its turn came. */
export const pastGiveUpReason = (hook: Hook) => `past retry.giveUpAfter (${hook.retry.giveUpAfter} ms) before its next attempt`;

/**
 * The `reason` label of a failed attempt, from a small set: `http-<status>`, `timeout`, or
 * the error's code (`ECONNREFUSED`, `CERT_HAS_EXPIRED`, ...); `error` for an error without
 * one (its message, which may name anything, stays in the log line).
 */
export function failureReason(r: PostResult): string {
  if (r.status !== undefined) return `http-${r.status}`;
  if (r.error?.startsWith('timeout after ')) return 'timeout';
  return r.error && /^[A-Z][A-Z0-9_]*$/.test(r.error) ? r.error : 'error';
}

/** Logs one delivery given up (webhook.gave-up) and counts it, wherever it was decided: at start-up too. */
export function logGaveUp(log: Logger, hook: Hook | undefined, d: { id: string; event: string }, attempts: number, reason: string): void {
  webhookTallyOf(log).gaveUpDeliveries(hook?.host, 1);
  log.error({ event: EVENTS.webhookGaveUp, host: hook?.host, webhookEvent: d.event, delivery: d.id, attempts, reason }, 'webhook delivery given up');
}
