import type { Decision } from '../types.js';
import { chooseMethod, keylessAvailability, type PortalReach } from './availability.js';
import { decideWithKeys, type KeyFinder } from './decide-with-keys.js';
import { applyTlsForecast, withForecastReason } from './forecast-step.js';
import type { ForecastFn } from '../tls/forecast.js';
import type { DecideInput } from './evaluate.js';
import { findRecipientKeys, type KeyFinding } from './recipient-keys.js';
import type { Policy } from './schema.js';

export interface ExplainContext {
  policy: Policy;
  /** The portal as configured (portal/reach.ts); with the portal off it serves nobody but still knows Secure Text addresses. */
  portal: PortalReach | undefined;
  /** A lookup that reads the key store only; undefined when there is no store. */
  keys?: KeyFinding['keys'] | undefined;
  smimeMaxSize: number;
  pgpMaxSize?: number | undefined;
  log: KeyFinding['log'];
  /** The TLS capability cache's forecast, when the explaining process can read it. */
  forecast?: ForecastFn | undefined;
}

/**
 * Each recipient's decision as the gateway would make it now, without sending anything:
 * the same availability (policy/availability.ts), the same key step and the same final
 * choice of method as the planner. `method` is the method used; a reason is added when it
 * is not simply the first possible candidate (Secure Text, onNoMethod: portal).
 */
export async function explainDecisions(ctx: ExplainContext, input: DecideInput): Promise<Decision[]> {
  const keyless = keylessAvailability(ctx.portal);
  const isSms = (rcpt: string) => Boolean(ctx.portal?.isSms(rcpt));
  const keys = ctx.keys;
  const message = { id: 'policy-explain', size: input.facts.size };
  const find: KeyFinder | undefined = keys && ((wanted) => findRecipientKeys({ keys, smimeMaxSize: ctx.smimeMaxSize, pgpMaxSize: ctx.pgpMaxSize, isSms, log: ctx.log }, message, wanted));
  const { decisions, available } = await decideWithKeys(ctx.policy, input, { keyless, find });
  return Promise.all(
    decisions.map(async (d) => {
      const chosen = chooseMethod(d, available, isSms);
      const f = await applyTlsForecast(d, chosen.method, available, ctx.forecast);
      return { ...d, method: f.method, reasons: withForecastReason(chosen.why ? [...d.reasons, chosen.why] : d.reasons, f.why) };
    }),
  );
}
