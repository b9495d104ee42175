import type { PosternConfig, TlsLevel } from '../config/schema.js';
import { mostSpecificMatch } from '../ingress/authorize.js';
import { DeliveryDns, DnsError, type MxRecord } from './dns.js';

export interface NextHop {
  /** Name used for TLS verification and logs (MX host or route host). */
  name: string;
  port: number;
  addresses: string[];
}

export interface Route {
  domain: string;
  source: 'transport' | 'mx' | 'implicit-mx';
  hops: NextHop[];
  tls: TlsLevel;
  /** Where `tls` comes from, for the delivery log: "route:<key>" (delivery.routes), "tls-domain:<key>" (delivery.tls.domains) or "default". */
  tlsFrom: string;
}

/** A destination that cannot be resolved; `permanent` decides bounce vs. defer. */
export class RouteError extends Error {
  constructor(
    readonly permanent: boolean,
    readonly status: string,
    message: string,
  ) {
    super(message);
    this.name = 'RouteError';
  }
}

/**
 * Where mail for a domain goes: `delivery.routes` (a transport map: exact domain, then
 * "*.parent" patterns, then "*"), else MX per RFC 5321 §5.1 with the implicit MX (the
 * domain's own address) when there is no MX, and RFC 7505 null MX refused.
 */
export class Router {
  private readonly cache = new Map<string, { at: number; route: Promise<Route> }>();

  constructor(
    private readonly config: PosternConfig['delivery'],
    private readonly dns: DeliveryDns,
  ) {}

  /** Resolves a domain's route; results (not failures) are reused for dns.cacheTtl. */
  route(domain: string): Promise<Route> {
    const d = domain.toLowerCase();
    const ttl = this.config.dns.cacheTtl;
    const now = Date.now();
    const hit = this.cache.get(d);
    if (hit && now - hit.at < ttl) return hit.route;
    const route = this.resolve(d);
    if (ttl > 0) {
      this.cache.set(d, { at: now, route });
      route.catch(() => this.cache.delete(d));
      if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value as string);
    }
    return route;
  }

  private async resolve(d: string): Promise<Route> {
    const transport = this.transportFor(d);
    if (transport) {
      const { host, port } = transport.nexthop;
      const addresses = await this.addressesOrThrow(host);
      const tls = transport.tls ? { tls: transport.tls, tlsFrom: `route:${transport.key}` } : this.tlsFor(d);
      return { domain: d, source: 'transport', hops: [{ name: host, port, addresses }], ...tls };
    }
    const { tls, tlsFrom } = this.tlsFor(d);
    let mx: MxRecord[];
    try {
      mx = await this.dns.mx(d);
    } catch (err) {
      if (!(err instanceof DnsError)) throw err;
      if (err.outcome === 'nxdomain') throw new RouteError(true, '5.1.2', `domain ${d} does not exist (${err.code})`);
      if (err.outcome === 'temporary') throw new RouteError(false, '4.4.3', `DNS lookup failed for ${d}: ${err.code}`);
      mx = [];
    }
    if (mx.length === 1 && (mx[0]?.exchange === '' || mx[0]?.exchange === '.')) {
      throw new RouteError(true, '5.1.10', `domain ${d} does not accept mail (null MX, RFC 7505)`);
    }
    if (mx.length === 0) {
      const addresses = await this.addressesOrThrow(d);
      return { domain: d, source: 'implicit-mx', hops: [{ name: d, port: this.config.mxPort, addresses }], tls, tlsFrom };
    }
    const sorted = [...mx].filter((r) => r.exchange && r.exchange !== '.').sort((a, b) => a.priority - b.priority);
    const hops: NextHop[] = [];
    let lastError: RouteError | undefined;
    for (const record of sorted) {
      try {
        hops.push({ name: record.exchange.toLowerCase().replace(/\.$/, ''), port: this.config.mxPort, addresses: await this.addressesOrThrow(record.exchange) });
      } catch (err) {
        if (!(err instanceof RouteError)) throw err;
        // One temporary failure makes the whole lookup temporary: that MX may come back.
        if (!lastError || lastError.permanent) lastError = err;
      }
    }
    if (!hops.length) {
      const permanent = Boolean(lastError?.permanent);
      throw new RouteError(permanent, lastError?.status ?? '4.4.3', `no usable MX host for ${d}: ${lastError?.message ?? 'none resolved'}`);
    }
    return { domain: d, source: 'mx', hops, tls, tlsFrom };
  }

  tlsLevelFor(domain: string): TlsLevel {
    return this.tlsFor(domain).tls;
  }

  private tlsFor(domain: string): { tls: TlsLevel; tlsFrom: string } {
    const levels = this.config.tls.domains;
    const key = mostSpecificMatch(Object.keys(levels), domain);
    return key ? { tls: levels[key] as TlsLevel, tlsFrom: `tls-domain:${key}` } : { tls: this.config.tls.default, tlsFrom: 'default' };
  }

  private transportFor(domain: string): { key: string; nexthop: { host: string; port: number }; tls?: TlsLevel | undefined } | undefined {
    const routes = this.config.routes;
    const pick = (key: string) => {
      const r = routes[key];
      if (!r) return undefined;
      return 'nexthop' in r ? { key, ...r } : { key, nexthop: r };
    };
    const key = mostSpecificMatch(Object.keys(routes), domain);
    return key ? pick(key) : undefined;
  }

  private async addressesOrThrow(host: string): Promise<string[]> {
    try {
      return await this.dns.addresses(host);
    } catch (err) {
      if (!(err instanceof DnsError)) throw err;
      if (err.outcome === 'temporary') throw new RouteError(false, '4.4.3', `cannot resolve ${host}: ${err.code}`);
      throw new RouteError(true, '5.1.2', `host ${host} has no address (${err.code})`);
    }
  }
}
