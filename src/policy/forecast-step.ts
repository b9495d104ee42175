import { domainOf } from '../ingress/authorize.js';
import { describeForecast, type ForecastFn, type TlsForecast } from '../tls/forecast.js';
import type { Decision, ProtectionMethod } from '../types.js';
import type { MethodAvailability } from './evaluate.js';

/** Reasons that carry a forecast start with this (a later attempt replaces them). */
export const FORECAST_REASON = 'TLS forecast:';

export interface ForecastOutcome {
  method: ProtectionMethod | undefined;
  /** The reason to add to the decision, when there is a forecast. */
  why?: string | undefined;
  forecast?: TlsForecast[] | undefined;
  /** The forecast moved the recipient from tls to `method`. */
  switched?: boolean | undefined;
}

/**
 * The capability cache's forecast for a recipient that goes by TLS at a level that can
 * fail (encrypt, verify, mta-sts): it becomes a reason of the decision. The attempt stays
 * the final word — except when every MX of the domain is known to fail the level and
 * the recipient's decision has somewhere to go now: the next possible candidate, or the
 * portal when onNoMethod says so. Then it goes there at once instead of waiting out an
 * attempt that will fail. (Deferring on a forecast alone would only delay: an attempt is
 * made, and refreshes what the cache knows.)
 */
export async function applyTlsForecast(d: Decision, method: ProtectionMethod | undefined, available: MethodAvailability, forecast: ForecastFn | undefined): Promise<ForecastOutcome> {
  if (method !== 'tls' || !forecast || d.tls === 'may') return { method };
  const f = await forecast(domainOf(d.rcpt), d.tls === 'encrypt' ? 'encrypt' : 'verify');
  if (!f) return { method };
  const seen = `${FORECAST_REASON} every MX failed ${d.tls === 'encrypt' ? 'encryption' : 'verification'} when last seen: ${describeForecast(f)}`;
  const after = d.candidates.slice(d.candidates.indexOf('tls') + 1).find((m) => available(m, d.rcpt));
  const fallback = after ?? (d.onNoMethod === 'portal' && available('portal', d.rcpt) ? 'portal' : undefined);
  if (!fallback) return { method, why: `${seen}; tried anyway (the attempt decides)`, forecast: f };
  return { method: fallback, why: `${seen}; ${fallback} now instead of an attempt that would fail`, forecast: f, switched: true };
}

/** The decision's reasons with this attempt's forecast (an earlier attempt's one replaced). */
export function withForecastReason(reasons: string[], why: string | undefined): string[] {
  const kept = reasons.filter((r) => !r.startsWith(FORECAST_REASON));
  return why ? [...kept, why] : kept;
}
