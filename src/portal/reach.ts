import type { PosternConfig } from '../config/schema.js';
import { domainOf } from '../ingress/authorize.js';
import type { PortalReach } from '../policy/availability.js';

export type { PortalReach } from '../policy/availability.js';

/**
 * The portal's reach as configured, undefined when the portal is off. The gateway's
 * portal delivery and `postern policy explain` both use this, so explain says what the
 * gateway does.
 */
export function portalReach(config: Pick<PosternConfig, 'portal'>): PortalReach | undefined {
  const p = config.portal;
  if (!p.enabled) return undefined;
  const smsDomain = p.sms.domain.toLowerCase();
  const isSms = (rcpt: string) => domainOf(rcpt) === smsDomain;
  return { isSms, canServe: (rcpt) => !isSms(rcpt) || Boolean(p.sms.provider) };
}
