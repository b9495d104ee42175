import { parsePhoneNumberFromString } from 'libphonenumber-js';

/**
 * Phone numbers for Secure Text recipients (<digits>@secure.text), normalised to E.164
 * with libphonenumber (Google's numbering plans): a number with its country code (`+`,
 * `00`, or the digits of a full international number) keeps it; a national one gets the
 * default country's (`defaultCountry` is a calling code: 1, 44, 49), national trunk
 * prefix dropped (0 in most of Europe). Undefined for anything that is not a valid
 * number in its country's plan: a number the SMS provider would refuse, or, worse,
 * deliver to someone in another country.
 */
export function normalizePhone(localPart: string, defaultCountry: string): string | undefined {
  const text = localPart.replace(/[\s().-]/g, '');
  if (!/^\+?\d{1,17}$/.test(text)) return undefined;
  if (text.startsWith('+')) return valid(text);
  if (text.startsWith('00')) return valid(`+${text.slice(2)}`);
  // National first (the default country's own numbers), then as an international number without its `+`.
  return valid(text, defaultCountry) ?? valid(`+${text}`);
}

function valid(text: string, defaultCallingCode?: string): string | undefined {
  const parsed = parsePhoneNumberFromString(text, defaultCallingCode ? { defaultCallingCode } : undefined);
  return parsed?.isValid() ? parsed.number : undefined;
}
