import { domainToASCII } from 'node:url';

/**
 * Domain names as Postern compares them: lower case, internationalised names in their
 * ASCII (A-label, punycode) form, no trailing dot. One form matters because the same
 * domain reaches Postern both ways: smtp-server hands over every envelope domain as
 * U-labels (`bücher.example`) even when the client sent A-labels, while DNS, MTA-STS
 * (RFC 8461 §3), certificates and most configurations use A-labels.
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

// Every message compares the same few domains many times (policy rules, routes, TLS
// levels): the conversion is remembered, within a bound so that odd input cannot grow it.
const COMPARABLE_CACHE_LIMIT = 10_000;
const comparable = new Map<string, string>();

/** A domain for comparison: its ASCII form, or lower-cased as it came when it is not a valid name. */
export function comparableDomain(domain: string): string {
  let known = comparable.get(domain);
  if (known === undefined) {
    known = asciiDomain(domain) ?? domain.toLowerCase();
    if (comparable.size >= COMPARABLE_CACHE_LIMIT) comparable.clear();
    comparable.set(domain, known);
  }
  return known;
}

/**
 * An address for comparison: the local part lower-cased (as Postern always compared it),
 * the domain in the comparable form above. The policy compares recipients with its keys
 * this way, and the key store addresses with what keys and certificates name: a key for
 * pat@xn--bcher-kva.example serves pat@bücher.example, however either was written.
 * "@domain" (a domain key of the key store) keeps its form: "@" and the ASCII domain.
 */
export function comparableAddress(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? address.toLowerCase() : `${address.slice(0, at).toLowerCase()}@${comparableDomain(address.slice(at + 1))}`;
}

/**
 * A domain pattern of a map ("example.org", "*.example.org", "*") in the comparable form;
 * undefined when the name is malformed.
 */
export function asciiDomainPattern(pattern: string): string | undefined {
  const p = pattern.trim();
  if (p === '*') return '*';
  const wildcard = p.startsWith('*.');
  const domain = asciiDomain(wildcard ? p.slice(2) : p);
  return domain && `${wildcard ? '*.' : ''}${domain}`;
}

/**
 * An address as it can go on the wire without SMTPUTF8 when only its domain is
 * internationalised: the domain as A-labels (RFC 6531 §3.2 needs the extension only for a
 * non-ASCII address). A non-ASCII local part, or a domain that is not a valid name, is
 * left as it is.
 */
export function asciiDomainAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at === -1 || !/[^\x00-\x7f]/.test(address)) return address;
  const local = address.slice(0, at);
  if (/[^\x00-\x7f]/.test(local)) return address;
  const domain = asciiDomain(address.slice(at + 1));
  return domain ? `${local}@${domain}` : address;
}
