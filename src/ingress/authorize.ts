import type { AuthUser, ClientRule } from '../config/schema.js';
import { cidrContains, parseCidr, type Cidr } from './cidr.js';
import { comparableDomain } from '../common/domain-name.js';

/**
 * Who may relay through Postern: clients listed by network in smtp.clients, or
 * clients that authenticated with SMTP AUTH. Each may be bound to sender domains.
 */
export class RelayAuthorizer {
  private readonly rules: { rule: ClientRule; nets: Cidr[] }[];
  private readonly users: Map<string, AuthUser>;
  private readonly byIp = new Map<string, { rule: ClientRule | undefined }>();

  constructor(clients: ClientRule[], users: AuthUser[]) {
    this.rules = clients.map((rule) => ({ rule, nets: rule.cidr.map((c) => parseCidr(c) as Cidr) }));
    this.users = new Map(users.map((u) => [u.username, u]));
  }

  get authEnabled(): boolean {
    return this.users.size > 0;
  }

  /** The first smtp.clients entry whose network holds the IP (remembered per address). */
  clientFor(ip: string): ClientRule | undefined {
    const known = this.byIp.get(ip);
    if (known) return known.rule;
    const rule = this.rules.find(({ nets }) => nets.some((n) => cidrContains(n, ip)))?.rule;
    if (this.byIp.size >= 10_000) this.byIp.clear(); // relays are few; strangers must not grow it
    this.byIp.set(ip, { rule });
    return rule;
  }

  user(username: string): AuthUser | undefined {
    return this.users.get(username);
  }

  /**
   * Whether the session may use this sender domain. A network rule's senderDomains and
   * an authenticated user's both apply: logging in never widens what a network may send.
   */
  senderAllowed(client: ClientRule | undefined, authUser: AuthUser | undefined, domain: string): boolean {
    const binding = senderBinding(client, authUser);
    return !binding || withinSenderDomains(binding, domain);
  }
}

/**
 * The sender-domain lists a session is bound to (the network rule's, the AUTH user's),
 * or undefined when neither has any: recorded on the envelope for the DKIM signer.
 */
export function senderBinding(client: ClientRule | undefined, authUser: AuthUser | undefined): string[][] | undefined {
  const lists = [client?.senderDomains, authUser?.senderDomains].filter((l): l is string[] => Array.isArray(l));
  return lists.length ? lists : undefined;
}

/** Whether every list of a binding has a pattern for the domain (a trailing dot ignored). */
export function withinSenderDomains(binding: string[][], domain: string): boolean {
  const d = domain.replace(/\.$/, '');
  return binding.every((list) => list.some((p) => domainMatches(p, d)));
}

/**
 * The most specific pattern of a map that matches the domain: the exact name, then the
 * longest "*.parent", then "*" (as Postfix transport_maps), whatever the file order.
 * Patterns are in the comparable form (the config and the policy file normalise their
 * keys); the domain is put in it here, as it may arrive as U-labels or A-labels.
 */
export function mostSpecificMatch(patterns: string[], domain: string): string | undefined {
  const d = comparableDomain(domain);
  if (patterns.includes(d)) return d;
  const wild = patterns.filter((p) => p.startsWith('*.') && domainMatches(p, d)).sort((a, b) => b.length - a.length)[0];
  return wild ?? (patterns.includes('*') ? '*' : undefined);
}

/** exact "example.org", "*.example.org" for subdomains only, "*" for any (the pattern in the comparable form). */
export function domainMatches(pattern: string, domain: string): boolean {
  const d = comparableDomain(domain);
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return d.endsWith(pattern.slice(1));
  return d === pattern;
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1).toLowerCase();
}

/**
 * Address forms used to test for open relays: percent hack, bang paths, source routes
 * and quoted local parts hiding an '@'. A gateway has no business with any of them.
 */
export function relayTestForm(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  const local = at === -1 ? address : address.slice(0, at);
  if (address.startsWith('@')) return 'source-route';
  if (/^".*@.*"$/.test(local)) return 'quoted-at';
  if (local.includes('%')) return 'percent-hack';
  if (local.includes('!')) return 'bang-path';
  if (local.startsWith('"') && local.includes('@')) return 'quoted-at';
  return undefined;
}
