import { lookup } from 'node:dns/promises';
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

/** `malformed`: the name itself cannot be looked up (e.g. a label over 63 octets), so asking again cannot help. */
export type DnsOutcome = 'nxdomain' | 'nodata' | 'malformed' | 'temporary';

/**
 * Resolver codes that say the name is not a valid DNS name (c-ares refuses it before any
 * query is sent): EBADNAME a malformed name, EBADSTR a malformed string. Every other
 * failure (SERVFAIL, timeouts, refused, no server) may pass and stays temporary.
 */
const MALFORMED_NAME_CODES = new Set(['EBADNAME', 'EBADSTR']);

/** A DNS failure sorted into what delivery must do with it. */
export class DnsError extends Error {
  constructor(
    readonly outcome: DnsOutcome,
    readonly query: string,
    readonly code: string,
  ) {
    super(`DNS ${query}: ${code}`);
    this.name = 'DnsError';
  }
}

export interface MxRecord {
  exchange: string;
  priority: number;
}

/**
 * DNS for delivery. With `delivery.dns.servers` set (tests, split-horizon sites) every
 * query goes to those servers; otherwise MX goes to the system resolvers and host
 * addresses through getaddrinfo, so /etc/hosts works for routes.
 */
export class DeliveryDns {
  private readonly resolver: Resolver;
  private readonly custom: boolean;

  constructor(servers: string[] | undefined, timeoutMs: number) {
    this.resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
    this.custom = Boolean(servers?.length);
    if (servers?.length) this.resolver.setServers(servers);
  }

  /** A raw lookup (TXT, A, AAAA) on the delivery resolver, for MTA-STS discovery. */
  resolve(name: string, type: 'TXT' | 'A' | 'AAAA'): Promise<unknown> {
    return this.resolver.resolve(name, type);
  }

  async mx(domain: string): Promise<MxRecord[]> {
    try {
      return await this.resolver.resolveMx(domain);
    } catch (err) {
      throw classify(err, `MX ${domain}`);
    }
  }

  /** IPv4 then IPv6 addresses of a host; an IP literal is returned as is. */
  async addresses(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    if (!this.custom) {
      try {
        return (await lookup(host, { all: true })).map((a) => a.address);
      } catch (err) {
        throw classify(err, `A/AAAA ${host}`);
      }
    }
    const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(host), this.resolver.resolve6(host)]);
    const found = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (found.length) return found;
    const failures = [v4, v6].filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => classify(r.reason, `A/AAAA ${host}`));
    throw failures.find((f) => f.outcome === 'temporary') ?? failures[0] ?? new DnsError('nodata', `A/AAAA ${host}`, 'ENODATA');
  }
}

function classify(err: unknown, query: string): DnsError {
  const code = (err as NodeJS.ErrnoException).code ?? 'UNKNOWN';
  if (code === 'ENOTFOUND') return new DnsError('nxdomain', query, code);
  if (code === 'ENODATA') return new DnsError('nodata', query, code);
  if (MALFORMED_NAME_CODES.has(code)) return new DnsError('malformed', query, code);
  return new DnsError('temporary', query, code);
}
