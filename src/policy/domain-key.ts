import { domainToASCII } from 'node:url';

/**
 * Domains and addresses as the policy compares them: lower case, internationalised
 * names in their ASCII (punycode) form, no trailing dot. Keys of the policy file are
 * normalised once when it is loaded; the message's addresses each time they are compared.
 */

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** The ASCII form of a domain name, or undefined when it is not one. */
export function asciiDomain(domain: string): string | undefined {
  const trimmed = domain.trim().replace(/\.$/, '');
  if (!trimmed || /[\s@*/\\]/.test(trimmed)) return undefined;
  const ascii = domainToASCII(trimmed);
  if (!ascii || ascii.length > 253 || !ascii.split('.').every((l) => LABEL.test(l))) return undefined;
  return ascii;
}

/** A recipient's or sender's domain for comparison (as it came when it is not a valid name). */
export function comparableDomain(domain: string): string {
  return asciiDomain(domain) ?? domain.toLowerCase();
}

/** An address for comparison: the local part lower-cased (as the policy always compared it), the domain in ASCII. */
export function comparableAddress(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? address.toLowerCase() : `${address.slice(0, at).toLowerCase()}@${comparableDomain(address.slice(at + 1))}`;
}

export const DOMAIN_PATTERN_HELP = 'use a domain (example.org), "*.example.org" for its subdomains or "*" for any';

/** A domain pattern of the policy ("example.org", "*.example.org", "*"), normalised; undefined when malformed. */
export function normalizeDomainPattern(pattern: string): string | undefined {
  const p = pattern.trim();
  if (p === '*') return '*';
  const wildcard = p.startsWith('*.');
  const domain = asciiDomain(wildcard ? p.slice(2) : p);
  return domain && `${wildcard ? '*.' : ''}${domain}`;
}

/** A recipient key of the policy (an address), normalised; undefined when malformed. */
export function normalizeAddressKey(address: string): string | undefined {
  const a = address.trim();
  const at = a.lastIndexOf('@');
  if (at <= 0 || /\s/.test(a)) return undefined;
  const domain = asciiDomain(a.slice(at + 1));
  return domain && `${a.slice(0, at).toLowerCase()}@${domain}`;
}
