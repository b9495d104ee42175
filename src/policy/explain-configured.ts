import type { PosternConfig } from '../config/schema.js';
import { transportRouteKey } from '../deliver/router.js';
import { createLogger } from '../events/logger.js';
import { domainOf } from '../ingress/authorize.js';
import { storeOnlyKeys } from '../keys/store-only.js';
import { portalReach } from '../portal/reach.js';
import type { ForecastFn } from '../tls/forecast.js';
import type { Decision } from '../types.js';
import type { DecideInput } from './evaluate.js';
import { explainDecisions } from './explain.js';
import type { Policy } from './schema.js';

/**
 * `policy explain` for a gateway's config (CLI and admin API): its portal, its key store,
 * and the TLS forecast when the caller has the delivery's capability cache (the admin API
 * of a gateway process; the CLI runs apart from it and has none).
 */
export async function explainForConfig(config: PosternConfig, policy: Policy, input: DecideInput, forecast?: ForecastFn): Promise<Decision[]> {
  const keys = await storeOnlyKeys(config);
  try {
    const ctx = { policy, portal: portalReach(config), keys: keys?.lookup, smimeMaxSize: config.protect.smime.maxSize, pgpMaxSize: config.protect.pgp.maxSize, log: createLogger('silent'), forecast };
    return (await explainDecisions(ctx, input)).map((d) => withRouteNote(d, config));
  } finally {
    await keys?.store.close();
  }
}

/**
 * The delivery.routes key of the transport route a `tls: mta-sts` decision's domain goes
 * by, if any. MTA-STS validates the domain's own MX hosts, which that route bypasses, so
 * delivery holds the recipient (or moves it to the portal): explain must say so rather
 * than promise MTA-STS-validated TLS, in the CLI and the admin API alike.
 */
export function mtaStsRouteKey(d: Decision, config: PosternConfig): string | undefined {
  if (d.method !== 'tls' || d.tls !== 'mta-sts') return undefined;
  return transportRouteKey(config.delivery.routes, domainOf(d.rcpt));
}

function withRouteNote(d: Decision, config: PosternConfig): Decision {
  const key = mtaStsRouteKey(d, config);
  if (key === undefined) return d;
  const why = `MTA-STS does not apply to a transport route: delivery.routes "${key}" sends ${domainOf(d.rcpt)} to its next hop, not to its MX hosts, so delivery holds this recipient (4.7.5), or moves it to the portal when its decision allows`;
  return { ...d, reasons: [...d.reasons, why] };
}
