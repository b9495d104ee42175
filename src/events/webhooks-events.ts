/**
 * Which bus events can be sent as webhooks, and their names there. Receivers subscribe
 * by these friendly names, or by the log's event codes; both may be globs ("delivery.*",
 * "portal.*", "*"). Operational lines (listeners, connections, webhook.* themselves) are
 * never sent. The README's webhooks table is this table.
 */
export const WEBHOOK_EVENTS: Readonly<Record<string, string>> = {
  'queue.accepted': 'accepted',
  'inspect.done': 'inspected',
  'policy.decision': 'decided',
  'delivery.sent': 'delivered',
  'delivery.deferred': 'deferred',
  'delivery.bounced': 'bounced',
  'dsn.queued': 'dsn.queued',
  'protect.failed': 'protect.failed',
  'portal.notice': 'portal.notified',
  'portal.fallback': 'portal.fallback',
  'portal.view': 'portal.opened',
  'portal.download': 'portal.downloaded',
  'portal.reply': 'portal.replied',
  'portal.login-failed': 'portal.login-failed',
  'portal.locked': 'portal.locked',
  'portal.revoked': 'portal.revoked',
  'portal.expired': 'portal.expired',
  'archive.journal-failed': 'journal.failed',
  'archive.purged': 'archive.purged',
  'policy.rejected': 'policy.rejected',
  'keys.imported': 'keys.imported',
  'keys.removed': 'keys.removed',
};

/**
 * Events every gateway process logs for one cause: each process watches the policy file
 * (the primary too, with the admin API on), so one broken change is rejected by all of
 * them at once, each with its own delivery id a receiver cannot de-duplicate. Only the
 * process of shard 0 sends them: there is always one (the single process, or worker 0),
 * and it always watches the file. A delivery id made from the file's content instead would
 * merge two rejections of the same broken text made at different times.
 */
const ONE_SENDER_EVENTS = new Set(['policy.rejected']);

/** Whether this process (its spool shard, or `primary`) sends webhooks of this event. */
export const sendsEvent = (code: string, shard: number | string): boolean => !ONE_SENDER_EVENTS.has(code) || String(shard) === '0';

/** The webhook name of a bus event, or undefined when it is not sent as a webhook. */
export const webhookName = (code: string): string | undefined => WEBHOOK_EVENTS[code];

function globRegExp(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`);
}

/** A subscription list compiled once: does an event (by code, and its webhook name) match? */
export function subscriptionMatcher(patterns: string[]): (code: string) => boolean {
  const res = patterns.map(globRegExp);
  return (code) => {
    const name = WEBHOOK_EVENTS[code];
    return name !== undefined && res.some((re) => re.test(name) || re.test(code));
  };
}

/** Why a subscription pattern is useless (it matches no webhook event), for check-config. */
export function subscriptionProblem(pattern: string): string | undefined {
  const re = globRegExp(pattern);
  const known = Object.entries(WEBHOOK_EVENTS).some(([code, name]) => re.test(code) || re.test(name));
  return known ? undefined : `"${pattern}" matches no webhook event (e.g. delivered, deferred, bounced, portal.opened, portal.replied, portal.locked, delivery.*)`;
}
