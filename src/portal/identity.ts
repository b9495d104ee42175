import { comparableDomain } from '../common/domain-name.js';
import { normalizePhone } from './phone.js';

/**
 * One portal account per person: an email address (case-insensitive), or a phone number
 * for Secure Text recipients (<digits>@<sms domain>), so one password serves all their
 * messages. The SMS domain is recognised in any spelling the router and the portal's
 * reach accept (case, trailing dot, full-width letters, soft hyphens, xn-- or Unicode):
 * a notice sent for 15551230004@ｓｅｃｕｒｅ.text must open the phone number's account.
 */
export function identityOf(address: string, smsDomain: string, defaultCountry: string): string | undefined {
  const a = address.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  if (at > 0 && comparableDomain(a.slice(at + 1)) === comparableDomain(smsDomain)) {
    const phone = normalizePhone(a.slice(0, at), defaultCountry);
    return phone && `${phone}@${smsDomain.toLowerCase()}`;
  }
  if (at > 0) return a;
  // A bare phone number typed into the login form.
  const phone = normalizePhone(a, defaultCountry);
  return phone && `${phone}@${smsDomain.toLowerCase()}`;
}
