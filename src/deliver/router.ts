import { isIP, isIPv4, isIPv6 } from 'node:net';
import { asciiDomainPattern, comparableDomain } from '../common/domain-name.js';
import type { PosternConfig, TlsLevel } from '../config/schema.js';
import { mostSpecificMatch } from '../ingress/authorize.js';
import { DeliveryDns, DnsError, type MxRecord } from './dns.js';

export interface NextHop {
  /** Name used for TLS verification and logs (MX host or route host; the IP of an address literal). */
  name: string;
  port: number;
  addresses: string[];
}

export interface Route {
  domain: string;
  source: 'transport' | 'mx' | 'implicit-mx' | 'address-literal';
  hops: NextHop[];
  tls: TlsLevel;
  /** Where `tls` comes from, for the delivery log: "route:<key>" (delivery.routes), "tls-domain:<key>" (delivery.tls.domains) or "default". */
  tlsFrom: string;
  /** A transport route's delivery.routes key, as written (reasons name it). */
  routeKey?: string | undefined;
}

/**
 * A route as resolved (and cached): its hops in groups of equal MX preference, best
 * first. The order inside a group is drawn on each use (see Router.route), so a cached
 * route does not send every message to the same one of several equal MX hosts.
 */
interface ResolvedRoute extends Omit<Route, 'hops'> {
  hopGroups: NextHop[][];
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

/** A map of delivery.routes or delivery.tls.domains, keyed in the comparable form, each entry with its key as written (for the log). */
type ComparableMap<T> = Map<string, { key: string; value: T }>;

/**
 * Where mail for a domain goes: `delivery.routes` (a transport map: exact domain, then
 * "*.parent" patterns, then "*"), else an address literal's own IP (RFC 5321 §4.1.3),
 * else MX per RFC 5321 §5.1 (equal preferences in random order) with the implicit MX
 * (the domain's own address) when there is no MX, and RFC 7505 null MX refused.
 *
 * Domains are compared and looked up in the comparable form of src/common/domain-name.ts
 * (lower-case A-labels; an address literal, not being a name, lower-cased as it is):
 * smtp-server hands the envelope's domains over as U-labels (`bücher.example`) even when
 * the client sent A-labels, DNS holds A-labels, and the config's keys may be written
 * either way.
 */
export class Router {
  private readonly cache = new Map<string, { at: number; route: Promise<ResolvedRoute> }>();
  private readonly routes: ComparableMap<PosternConfig['delivery']['routes'][string]>;
  private readonly tlsDomains: ComparableMap<TlsLevel>;

  /** `random` (values in [0, 1)) orders equal-preference MX hosts; tests pass a seeded one. */
  constructor(
    private readonly config: PosternConfig['delivery'],
    private readonly dns: DeliveryDns,
    private readonly random: () => number = Math.random,
  ) {
    this.routes = comparableKeys(config.routes);
    this.tlsDomains = comparableKeys(config.tls.domains);
  }

  /** Resolves a domain's route; results (not failures) are reused for dns.cacheTtl. */
  async route(domain: string): Promise<Route> {
    const { hopGroups, ...route } = await this.resolved(comparableDomain(domain));
    // RFC 5321 §5.1: the client MUST randomise hosts of equal preference. Drawn per use.
    return { ...route, hops: hopGroups.flatMap((group) => shuffled(group, this.random)) };
  }

  private resolved(d: string): Promise<ResolvedRoute> {
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

  private async resolve(d: string): Promise<ResolvedRoute> {
    const transport = this.transportFor(d);
    if (transport) {
      const { host, port } = transport.nexthop;
      const addresses = await this.addressesOrThrow(host);
      const tls = transport.tls ? { tls: transport.tls, tlsFrom: `route:${transport.key}` } : this.tlsFor(d);
      return { domain: d, source: 'transport', hopGroups: [[{ name: host, port, addresses }]], ...tls, routeKey: transport.key };
    }
    if (d.startsWith('[')) return this.literalRoute(d);
    const { tls, tlsFrom } = this.tlsFor(d);
    let mx: MxRecord[];
    try {
      mx = await this.dns.mx(d);
    } catch (err) {
      if (!(err instanceof DnsError)) throw err;
      if (err.outcome === 'nxdomain') throw new RouteError(true, '5.1.2', `domain ${d} does not exist (${err.code})`);
      if (err.outcome === 'malformed') throw new RouteError(true, '5.1.2', `${d} is not a valid domain name (${err.code})`);
      if (err.outcome === 'temporary') throw new RouteError(false, '4.4.3', `DNS lookup failed for ${d}: ${err.code}`);
      mx = [];
    }
    if (mx.length === 1 && (mx[0]?.exchange === '' || mx[0]?.exchange === '.')) {
      throw new RouteError(true, '5.1.10', `domain ${d} does not accept mail (null MX, RFC 7505)`);
    }
    if (mx.length === 0) {
      const addresses = await this.addressesOrThrow(d);
      return { domain: d, source: 'implicit-mx', hopGroups: [[{ name: d, port: this.config.mxPort, addresses }]], tls, tlsFrom };
    }
    const sorted = [...mx].filter((r) => r.exchange && r.exchange !== '.').sort((a, b) => a.priority - b.priority);
    const hopGroups: NextHop[][] = [];
    let lastPriority: number | undefined;
    let lastError: RouteError | undefined;
    for (const record of sorted) {
      let hop: NextHop;
      try {
        hop = await this.mxHop(d, record);
      } catch (err) {
        if (!(err instanceof RouteError)) throw err;
        // One temporary failure makes the whole lookup temporary: that MX may come back.
        if (!lastError || lastError.permanent) lastError = err;
        continue;
      }
      if (record.priority === lastPriority) hopGroups[hopGroups.length - 1]?.push(hop);
      else hopGroups.push([hop]);
      lastPriority = record.priority;
    }
    if (!hopGroups.length) {
      const permanent = Boolean(lastError?.permanent);
      throw new RouteError(permanent, lastError?.status ?? '4.4.3', `no usable MX host for ${d}: ${lastError?.message ?? 'none resolved'}`);
    }
    return { domain: d, source: 'mx', hopGroups, tls, tlsFrom };
  }

  /**
   * One MX host with its addresses. Its target must be a host name (RFC 1035 §3.3.9,
   * RFC 5321 §5.1): one that is an IP address is a malformed record and is not used, as
   * Postfix does not, however willing other mailers are.
   */
  private async mxHop(domain: string, record: MxRecord): Promise<NextHop> {
    const name = record.exchange.toLowerCase().replace(/\.$/, '');
    if (isIP(name)) throw new RouteError(true, '5.4.4', `malformed MX record of ${domain}: its target ${name} is an IP address, not a host name`);
    return { name, port: this.config.mxPort, addresses: await this.addressesOrThrow(name) };
  }

  /**
   * An address literal names the host itself (RFC 5321 §4.1.3, §5.1): no DNS. One that
   * is not an IPv4 or IPv6 address is a permanent failure.
   */
  private literalRoute(d: string): ResolvedRoute {
    const address = literalAddress(d);
    if (!address) throw new RouteError(true, '5.1.3', `${d} is not a valid address literal (RFC 5321 §4.1.3: [192.0.2.1] or [IPv6:2001:db8::1])`);
    return { domain: d, source: 'address-literal', hopGroups: [[{ name: address, port: this.config.mxPort, addresses: [address] }]], ...this.tlsFor(d) };
  }

  tlsLevelFor(domain: string): TlsLevel {
    return this.tlsFor(comparableDomain(domain)).tls;
  }

  /** The TLS level of delivery.tls for a domain already in the comparable form. */
  private tlsFor(domain: string): { tls: TlsLevel; tlsFrom: string } {
    const match = mostSpecific(this.tlsDomains, domain);
    return match ? { tls: match.value, tlsFrom: `tls-domain:${match.key}` } : { tls: this.config.tls.default, tlsFrom: 'default' };
  }

  /** The delivery.routes entry for a domain already in the comparable form. */
  private transportFor(domain: string): { key: string; nexthop: { host: string; port: number }; tls?: TlsLevel | undefined } | undefined {
    const match = mostSpecific(this.routes, domain);
    if (!match) return undefined;
    const r = match.value;
    return 'nexthop' in r ? { key: match.key, ...r } : { key: match.key, nexthop: r };
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

/**
 * The map keyed in the comparable form, normalised once here (whatever the config loader
 * did) so that either form of a key matches either form of a domain. Of two keys naming
 * the same domain (`bücher.example` and `xn--bcher-kva.example`), the first applies.
 */
function comparableKeys<T>(map: Record<string, T>): ComparableMap<T> {
  const out: ComparableMap<T> = new Map();
  for (const [key, value] of Object.entries(map)) {
    const k = asciiDomainPattern(key) ?? key.trim().toLowerCase();
    if (!out.has(k)) out.set(k, { key, value });
  }
  return out;
}

/**
 * The delivery.routes key (as written) that sends a domain's mail to a transport, or
 * undefined when it goes by MX; what Router.route() would choose, without resolving
 * anything (`policy explain`).
 */
export function transportRouteKey(routes: PosternConfig['delivery']['routes'], domain: string): string | undefined {
  return mostSpecific(comparableKeys(routes), comparableDomain(domain))?.key;
}

function mostSpecific<T>(map: ComparableMap<T>, domain: string): { key: string; value: T } | undefined {
  const k = mostSpecificMatch([...map.keys()], domain);
  return k === undefined ? undefined : map.get(k);
}

/**
 * The IP address an RFC 5321 §4.1.3 address literal names: "[192.0.2.1]" or
 * "[IPv6:2001:db8::1]" (the tag in any case); undefined for anything else, including a
 * general address literal ("[tag:...]") Postern has no transport for.
 */
export function literalAddress(literal: string): string | undefined {
  const inner = /^\[(.*)\]$/.exec(literal)?.[1];
  if (inner === undefined) return undefined;
  if (isIPv4(inner)) return inner;
  const v6 = /^ipv6:(.*)$/i.exec(inner)?.[1];
  // RFC 5321's IPv6-addr has no zone index ("fe80::1%eth0"), which net.isIPv6 accepts.
  return v6 !== undefined && isIPv6(v6) && !v6.includes('%') ? v6 : undefined;
}

/** A shuffled copy (Fisher–Yates) drawn from `random`. */
function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
