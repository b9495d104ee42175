import type { TlsLevel } from '../config/schema.js';
import type { Envelope } from '../types.js';

const TLS_ORDER: TlsLevel[] = ['none', 'may', 'encrypt', 'verify'];
const rank = (level: TlsLevel): number => TLS_ORDER.indexOf(level);

export interface AttemptTls {
  level: TlsLevel;
  /** Set when the route's level was not applied: why (for the log line). */
  relaxed?: string | undefined;
}

/**
 * The TLS level of one delivery attempt (before MTA-STS). The decision's level is a floor:
 * it raises the route's level (delivery.routes, delivery.tls) and never lowers it.
 *
 * The one exception is Postern's own portal notice (and password-reset link), and only
 * that origin: it carries a link, never content, and it is what tells a recipient whose
 * MX just failed TLS that their message waits in the portal. Raised to the route's
 * `verify`, it would fail at that same MX, wait out its lifetime and expire without a
 * report (its sender is null), so the recipient would never hear of the message. It goes
 * with its own decision's level instead (`may`: STARTTLS when offered, never required),
 * and never above what the route allows (a route set to `none` stays `none`).
 */
export function attemptTls(origin: Envelope['origin'], routeTls: TlsLevel, decisionTls: TlsLevel): AttemptTls {
  const floor = rank(routeTls) >= rank(decisionTls) ? routeTls : decisionTls;
  if (origin !== 'portal-notice') return { level: floor };
  const level = rank(routeTls) <= rank(decisionTls) ? routeTls : decisionTls;
  if (level === floor) return { level };
  return { level, relaxed: `a portal notice carries a link, never content: sent at its own TLS level (${level}) instead of the route's ${routeTls}` };
}
