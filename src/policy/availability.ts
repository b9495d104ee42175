import type { Decision, ProtectionMethod } from '../types.js';
import type { MethodAvailability } from './evaluate.js';
import type { FoundKeys } from './recipient-keys.js';

/** Whom the portal can serve (portal/reach.ts builds it from the config). */
export interface PortalReach {
  /** A Secure Text recipient: <digits>@<portal.sms.domain>. */
  isSms(rcpt: string): boolean;
  /** Whether the portal can take this recipient's copy (Secure Text needs an SMS provider). */
  canServe(rcpt: string): boolean;
}

/**
 * The methods possible for a recipient without a key, as the gateway runs: TLS to anyone
 * with a mail server (not a Secure Text number), the portal when it is on and can serve
 * them. pgp and smime need a key: see withKeys().
 */
export function keylessAvailability(portal: PortalReach | undefined): MethodAvailability {
  return (method, rcpt) => (method === 'tls' ? !portal?.isSms(rcpt) : method === 'portal' ? Boolean(portal?.canServe(rcpt)) : false);
}

/** The availability once the keys found for each recipient are known. */
export function withKeys(keyless: MethodAvailability, found: Map<string, FoundKeys>): MethodAvailability {
  return (m, rcpt) => (m === 'pgp' || m === 'smime' ? Boolean(found.get(rcpt)?.[m]) : keyless(m, rcpt));
}

/**
 * The key methods worth a lookup for a recipient: pgp or smime listed before the first
 * method possible without a key (so a TLS-only policy never asks WKD anything).
 */
export function keysWanted(candidates: ProtectionMethod[], rcpt: string, keyless: MethodAvailability): ('pgp' | 'smime')[] {
  const first = candidates.findIndex((m) => m !== 'pgp' && m !== 'smime' && keyless(m, rcpt));
  return candidates.slice(0, first === -1 ? undefined : first).filter((m): m is 'pgp' | 'smime' => m === 'pgp' || m === 'smime');
}

/**
 * The method a recipient gets now (asked again on every attempt: a method may have
 * become possible), and why when it is not simply the first possible candidate. Secure
 * Text recipients have no mail server: the portal, with an SMS notice, is the only way to
 * them, whatever the policy lists. onNoMethod: portal sends a recipient there when nothing
 * listed is possible.
 */
export function chooseMethod(d: Decision, available: MethodAvailability, isSms: (rcpt: string) => boolean): { method: ProtectionMethod | undefined; why?: string | undefined } {
  const portal = available('portal', d.rcpt);
  if (isSms(d.rcpt) && portal) return { method: 'portal', why: 'Secure Text recipient: the portal, with the link by SMS' };
  const first = d.candidates.find((m) => available(m, d.rcpt));
  if (first) return { method: first };
  if (d.onNoMethod === 'portal' && portal) return { method: 'portal', why: 'onNoMethod portal: the portal, which can serve this recipient' };
  return { method: undefined, why: d.onNoMethod === 'portal' ? 'the portal cannot serve this recipient either: held (deferred)' : undefined };
}
