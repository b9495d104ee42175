import type { PosternConfig } from '../config/schema.js';
import { createLogger } from '../events/logger.js';
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
    return await explainDecisions(ctx, input);
  } finally {
    await keys?.store.close();
  }
}
