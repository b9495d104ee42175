import { asciiDomain, asciiDomainPattern } from '../common/domain-name.js';

/**
 * Domains and addresses as the policy compares them: lower case, internationalised
 * names in their ASCII (punycode) form, no trailing dot (src/common/domain-name.ts).
 * Keys of the policy file are normalised once when it is loaded; the message's addresses
 * each time they are compared.
 */

/** An address for comparison (the key store compares them the same way): src/common/domain-name.ts. */
export { comparableAddress } from '../common/domain-name.js';

export const DOMAIN_PATTERN_HELP = 'use a domain (example.org), "*.example.org" for its subdomains or "*" for any';

/** A domain pattern of the policy ("example.org", "*.example.org", "*"), normalised; undefined when malformed. */
export const normalizeDomainPattern = asciiDomainPattern;

/** A recipient key of the policy (an address), normalised; undefined when malformed. */
export function normalizeAddressKey(address: string): string | undefined {
  const a = address.trim();
  const at = a.lastIndexOf('@');
  if (at <= 0 || /\s/.test(a)) return undefined;
  const domain = asciiDomain(a.slice(at + 1));
  return domain && `${a.slice(0, at).toLowerCase()}@${domain}`;
}

/**
 * A sender or recipient glob of a rule ("*@example.org", "dr.*@*.bücher.example"), with
 * its domain part in the comparable form label by label (a label with a "*" stays as it
 * is written, lower-cased), to be matched against comparableAddress(): the envelope's
 * domains arrive as U-labels, or in other Unicode forms (full-width letters) that name
 * the same domain, and must match however the rule spells it.
 */
export function normalizeAddressGlob(pattern: string): string {
  const p = pattern.trim();
  const at = p.lastIndexOf('@');
  if (at === -1) return p.toLowerCase();
  const labels = p.slice(at + 1).split('.').map((label) => (label.includes('*') ? label.toLowerCase() : (asciiDomain(label) ?? label.toLowerCase())));
  return `${p.slice(0, at).toLowerCase()}@${labels.join('.')}`;
}

