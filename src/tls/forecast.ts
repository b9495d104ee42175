import type { TlsLevel } from '../config/schema.js';
import type { TlsCapability } from './capability-cache.js';

/** What the last visit to a next hop says about a TLS level it will not meet. */
export interface TlsForecast {
  /** host:port */
  host: string;
  /** RFC 8460 result type (or "unverified") seen there. */
  result: string;
  checkedAt: number;
}

/** The forecast for a recipient domain at a level: every next hop known to fail it, or undefined. */
export type ForecastFn = (domain: string, level: Extract<TlsLevel, 'encrypt' | 'verify'>) => Promise<TlsForecast[] | undefined>;

/**
 * A forecast from the per-MX capability cache (capability-cache.ts): only when every
 * next hop of the domain was seen, and seen failing the level, is a failure foreseen —
 * one hop unknown or fine and the attempt may well succeed. Routing problems give no
 * forecast (the attempt reports them).
 */
export function tlsForecaster(
  route: (domain: string) => Promise<{ hops: { name: string; port: number }[] }>,
  capability: (host: string, port: number) => Promise<TlsCapability | undefined>,
): ForecastFn {
  return async (domain, level) => {
    let hops;
    try {
      hops = (await route(domain)).hops;
    } catch {
      return undefined;
    }
    const seen: TlsForecast[] = [];
    for (const hop of hops) {
      const c = await capability(hop.name, hop.port);
      const fails = c && (!c.starttls || (level === 'verify' && c.verdict !== 'verified'));
      if (!c || !fails) return undefined;
      seen.push({ host: `${hop.name}:${hop.port}`, result: c.starttls ? c.verdict : 'starttls-not-supported', checkedAt: c.checkedAt });
    }
    return seen.length ? seen : undefined;
  };
}

export function describeForecast(f: TlsForecast[]): string {
  return f.map((h) => `${h.host} ${h.result} (seen ${new Date(h.checkedAt).toISOString()})`).join(', ');
}
