import { comparableDomain } from '../common/domain-name.js';
import type { PosternConfig } from '../config/schema.js';
import { domainOf } from '../ingress/authorize.js';
import type { PortalReach } from '../policy/availability.js';

export type { PortalReach } from '../policy/availability.js';

/**
 * Whether an address is at the Secure Text domain (portal.sms.domain), however either is
 * written: the comparable form (src/common/domain-name.ts), as the policy, the router
 * and MTA-STS compare domains, so "ｓｅｃｕｒｅ.text" (full-width letters), "sec\u00ADure.text"
 * (a soft hyphen), "SECURE.TEXT." and an IDN in either spelling are the same domain. A
 * Secure Text recipient has no mail server: compared more loosely than the router would,
 * such a recipient would be sent over SMTP to whatever answers for that spelling.
 */
export function isSecureTextAddress(rcpt: string, smsDomain: string): boolean {
  const domain = domainOf(rcpt);
  return domain !== '' && comparableDomain(domain) === comparableDomain(smsDomain);
}

/**
 * The portal's reach as configured. The gateway's portal delivery and `postern policy
 * explain` both use this, so explain says what the gateway does. With the portal off it
 * serves nobody, and Secure Text addresses still are Secure Text addresses: they have no
 * mail server, so such a recipient is held (or bounced, as onNoMethod says), never mailed
 * over SMTP. New ones are refused at RCPT (src/ingress/server.ts); this covers mail queued
 * while the portal was on.
 */
export function portalReach(config: Pick<PosternConfig, 'portal'>): PortalReach {
  const p = config.portal;
  const isSms = (rcpt: string) => isSecureTextAddress(rcpt, p.sms.domain);
  if (!p.enabled) return { isSms, canServe: () => false };
  return { isSms, canServe: (rcpt) => !isSms(rcpt) || Boolean(p.sms.provider) };
}
