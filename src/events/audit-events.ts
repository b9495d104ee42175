/**
 * The events the audit trail keeps: what compliance must be able to prove (who sent what
 * to whom, how it was protected and why, who read it, who changed what), not every
 * operational line. Connection chatter, listener start-up and the trail's own failures
 * stay in the log only. Patterns end in `.*` for a whole family.
 */
export const AUDITED_EVENTS: readonly string[] = [
  'gateway.start',
  'gateway.stopped',
  'smtp.auth',
  'smtp.reject',
  'queue.accepted',
  'queue.failed',
  'queue.retried',
  'queue.deleted',
  'inspect.done',
  'policy.decision',
  'policy.loaded',
  'policy.rejected',
  'keys.*',
  'protect.*',
  'dkim.*',
  'tls.mta-sts-testing',
  'tls.foreseen-failure',
  'delivery.sent',
  'delivery.deferred',
  'delivery.bounced',
  'dsn.*',
  'archive.*',
  'portal.notice',
  'portal.fallback',
  'portal.view',
  'portal.download',
  'portal.reply',
  'portal.login',
  'portal.login-failed',
  'portal.locked',
  'portal.revoked',
  'portal.key-rotated',
  'portal.expired',
  'portal.reset',
  'api.call',
  'audit.gap',
  'audit.truncated',
];

const exact = new Set(AUDITED_EVENTS.filter((p) => !p.endsWith('.*')));
const families = AUDITED_EVENTS.filter((p) => p.endsWith('.*')).map((p) => p.slice(0, -1));

export function isAudited(code: string): boolean {
  return exact.has(code) || families.some((f) => code.startsWith(f));
}
