import { rootCertificates } from 'node:tls';
import { parsePolicy, resolvePolicy } from 'mailauth/lib/mta-sts.js';
import { MemoryCache, type SharedCache } from '../common/shared-cache.js';
import { asciiDomainPattern, comparableDomain } from '../common/domain-name.js';
import { FetchError, fetchPolicy, type StsFailure } from './policy-fetch.js';
import { MemoryStsPolicies } from './sts-policy-memory.js';
import type { MtaStsPolicy, StsPolicyStore } from './sts-policy.js';

export type { StsFailure } from './policy-fetch.js';
export type { MtaStsPolicy, StsPolicyStore } from './sts-policy.js';

export interface MtaStsLookup {
  policy?: MtaStsPolicy | undefined;
  source: 'none' | 'fetched' | 'cache' | 'cache-after-failure';
  failure?: StsFailure | undefined;
  detail?: string | undefined;
}

export interface MtaStsOptions {
  /** DNS lookups (the delivery resolver, so tests can answer). */
  resolve: (name: string, type: 'TXT' | 'A' | 'AAAA') => Promise<unknown>;
  /** Extra CA certificates (PEM) trusted for policy hosts, beside the system ones. */
  trust: string[];
  /** HTTPS port of policy hosts: 443, except in tests. */
  port: number;
  /** The whole lookup of a domain's policy: DNS discovery, the policy host's addresses, the fetch (see policy-fetch.ts). */
  timeoutMs: number;
  /** Where recent failures ("no policy for now") are kept; shared by instances on Redis. Losing one early costs a lookup. */
  cache?: SharedCache | undefined;
  /**
   * Where policies are kept until their max_age: a store of their own, never the cache
   * above (with the fs queue a bounded MemoryCache that WKD lookups, TLS capabilities and
   * "no policy" entries would push them out of). Memory only when not given.
   */
  policies?: StsPolicyStore | undefined;
}

const MAX_POLICY_BYTES = 64 * 1024;
/** How long a failed discovery or fetch is remembered before trying again. */
const FAILURE_TTL_MS = 5 * 60_000;
/** A cached policy is fetched again (in the background) once this old, or half its max_age old if sooner. */
const REFRESH_AFTER_MS = 24 * 3_600_000;
/** Bound on the domains remembered as "refresh tried recently" (forgetting them only allows an earlier retry). */
const MAX_REFRESH_MARKS = 10_000;

/**
 * MTA-STS (RFC 8461) for outbound delivery. Discovery of the `_mta-sts` TXT record and
 * parsing of the policy file use mailauth; fetching is done here because mailauth's
 * fetch cannot take the delivery resolver's addresses, a CA for tests, a port, refuse
 * non-text/plain or oversized bodies — all required by RFC 8461 §3.3. Policies are kept
 * by domain until max_age in a store of their own (opts.policies); an unchanged id uses
 * the stored policy without fetching, and a stored policy survives a failed discovery or
 * fetch (§5.1). One a day old (or half its max_age) is fetched again in the background
 * while it still applies (§10.2: refresh before expiry, so a domain mailed regularly is
 * never without its policy). One deadline (timeoutMs) covers the whole lookup, DNS
 * included: a delivery never waits longer than that for a policy.
 */
export class MtaSts {
  private readonly cache: SharedCache;
  private readonly policies: StsPolicyStore;
  private readonly ca: string[];
  /** Domains whose policy is being refreshed or whose refresh failed: not tried again before the time given. */
  private readonly refreshNotBefore = new Map<string, number>();
  /** Policy fetches made (tests count them). */
  fetches = 0;

  constructor(private readonly opts: MtaStsOptions) {
    this.ca = [...rootCertificates, ...opts.trust];
    this.cache = opts.cache ?? new MemoryCache();
    this.policies = opts.policies ?? new MemoryStsPolicies();
  }

  async policyFor(domain: string, now = Date.now()): Promise<MtaStsLookup> {
    // Discovery, the policy host's name and its certificate check all use the A-label
    // form (RFC 8461 §3); the envelope may carry U-labels (smtp-server converts them).
    const d = comparableDomain(domain);
    const valid = await this.policies.get(d, now);
    if (!valid) {
      const recentFailure = await this.cache.get<{ until: number; lookup: MtaStsLookup }>(`mta-sts:failure:${d}`);
      if (recentFailure && recentFailure.until > now) return recentFailure.lookup;
    }

    const deadline = Date.now() + this.opts.timeoutMs;
    const resolve = this.resolverUntil(deadline);
    let id: string | false;
    try {
      id = await resolvePolicy(d, { resolver: resolve as never });
    } catch (err) {
      // Discovery failed (not "no record"): RFC 8460 has no type of its own for it.
      const failed = { failure: 'sts-policy-fetch-error' as const, detail: `TXT lookup of _mta-sts.${d} failed: ${(err as Error).message}` };
      if (valid) return { policy: valid, source: 'cache-after-failure', ...failed };
      return this.remember(d, now, { source: 'none', ...failed });
    }
    if (!id) {
      // No record (any more): a cached, unexpired policy still applies (RFC 8461 §5.1).
      // Without one, the answer is remembered briefly so each message does not ask again.
      return valid ? { policy: valid, source: 'cache' } : this.remember(d, now, { source: 'none' });
    }
    if (valid && valid.id === id) {
      this.refreshIfDue(d, valid, now);
      return { policy: valid, source: 'cache' };
    }
    try {
      const policy = await this.fetch(d, id, now, resolve, deadline);
      await this.policies.put(d, policy, now);
      await this.cache.delete(`mta-sts:failure:${d}`);
      return { policy, source: 'fetched' };
    } catch (err) {
      const failure = err instanceof FetchError ? err.failure : 'sts-policy-fetch-error';
      if (valid) return { policy: valid, source: 'cache-after-failure', failure, detail: (err as Error).message };
      return this.remember(d, now, { source: 'none', failure, detail: (err as Error).message });
    }
  }

  /**
   * RFC 8461 §10.2: a policy still in use is fetched again before it expires, in the
   * background (the delivery goes on with the stored one). A failed refresh changes
   * nothing — the stored policy applies until its max_age — and is tried again after
   * FAILURE_TTL_MS at the earliest.
   */
  private refreshIfDue(domain: string, policy: MtaStsPolicy, now: number): void {
    if (now - policy.fetchedAt < Math.min((policy.maxAge * 1000) / 2, REFRESH_AFTER_MS)) return;
    if ((this.refreshNotBefore.get(domain) ?? 0) > now) return;
    if (this.refreshNotBefore.size >= MAX_REFRESH_MARKS) this.refreshNotBefore.clear();
    this.refreshNotBefore.set(domain, now + FAILURE_TTL_MS);
    const deadline = Date.now() + this.opts.timeoutMs;
    void this.fetch(domain, policy.id, now, this.resolverUntil(deadline), deadline)
      .then(async (fresh) => {
        await this.policies.put(domain, fresh, now);
        this.refreshNotBefore.delete(domain);
      })
      .catch(() => undefined);
  }

  /** The delivery resolver, each answer bounded by the lookup's one deadline. */
  private resolverUntil(deadline: number): MtaStsOptions['resolve'] {
    return (name, type) => beforeDeadline(this.opts.resolve(name, type), deadline, `${name} ${type}`, this.opts.timeoutMs);
  }

  private async remember(domain: string, now: number, lookup: MtaStsLookup): Promise<MtaStsLookup> {
    await this.cache.set(`mta-sts:failure:${domain}`, { until: now + FAILURE_TTL_MS, lookup }, FAILURE_TTL_MS);
    return lookup;
  }

  private async fetch(domain: string, id: string, now: number, resolve: MtaStsOptions['resolve'], deadline: number): Promise<MtaStsPolicy> {
    const host = `mta-sts.${domain}`;
    const [v4, v6] = await Promise.all([resolve(host, 'A').catch(() => []), resolve(host, 'AAAA').catch(() => [])]);
    const addresses = (v4 as string[]).concat(v6 as string[]);
    if (!addresses.length) throw new FetchError('sts-policy-fetch-error', `${host} has no address${Date.now() >= deadline ? ` within the ${this.opts.timeoutMs} ms MTA-STS deadline` : ''}`);
    this.fetches++;
    const body = await fetchPolicy({ host, addresses, port: this.opts.port, ca: this.ca, deadline, timeoutMs: this.opts.timeoutMs, maxBytes: MAX_POLICY_BYTES });
    let parsed: { mode: string; mx?: string[]; maxAge: number };
    try {
      parsed = parsePolicy(body) as unknown as typeof parsed;
    } catch (err) {
      throw new FetchError('sts-policy-invalid', `policy of ${domain}: ${(err as Error).message}`);
    }
    return { id, mode: parsed.mode as MtaStsPolicy['mode'], mx: parsed.mx ?? [], maxAge: parsed.maxAge, fetchedAt: now };
  }
}

/** A DNS answer, or a rejection once the lookup's deadline has passed. */
async function beforeDeadline<T>(answer: Promise<T>, deadline: number, what: string, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not answered within the ${timeoutMs} ms MTA-STS deadline`)), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * RFC 8461 §4.1: an MX host matches a policy "mx" pattern exactly, or a "*.parent"
 * pattern when it has exactly one more label than the parent. (mailauth's validateMx
 * lets "*.example.com" match any depth, so this is written out.)
 */
export function mxMatchesPolicy(mxHost: string, policy: Pick<MtaStsPolicy, 'mx'>): boolean {
  const mx = comparableDomain(mxHost);
  return policy.mx.some((pattern) => {
    const p = asciiDomainPattern(pattern) ?? pattern.toLowerCase().replace(/\.$/, '');
    if (!p.startsWith('*.')) return p === mx;
    const parent = p.slice(1);
    return mx.endsWith(parent) && !mx.slice(0, -parent.length).includes('.') && mx.length > parent.length;
  });
}
