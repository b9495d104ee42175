import { normalizePhone } from './phone.js';

/**
 * One portal account per person: an email address (case-insensitive), or a phone number
 * for Secure Text recipients (<digits>@<sms domain>), so one password serves all their
 * messages.
 */
export function identityOf(address: string, smsDomain: string, defaultCountry: string): string | undefined {
  const a = address.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  if (at > 0 && a.slice(at + 1) === smsDomain.toLowerCase()) {
    const phone = normalizePhone(a.slice(0, at), defaultCountry);
    return phone && `${phone}@${smsDomain.toLowerCase()}`;
  }
  if (at > 0) return a;
  // A bare phone number typed into the login form.
  const phone = normalizePhone(a, defaultCountry);
  return phone && `${phone}@${smsDomain.toLowerCase()}`;
}
