import { parsePhoneNumberFromString } from 'libphonenumber-js';

/**
 * Phone numbers for Secure Text recipients (<digits>@secure.text), normalised to E.164
 * with libphonenumber (Google's numbering plans): a number with its country code (`+`,
 * `00`, or the digits of a full international number) keeps it; a national one gets the
 * default country's (`defaultCountry` is a calling code: 1, 44, 49), national trunk
 * prefix dropped (0 in most of Europe). A number valid in its country's plan wins; a
 * national number of the right length for the default country is taken too, even where
 * the plan data does not know its range (new ranges, fictional 555 numbers such as
 * 15551234567): it cannot be someone in another country, and the provider has the last
 * word. Undefined for anything else: a number that would be guessed into another
 * country, or has no country's length.
 */
export function normalizePhone(localPart: string, defaultCountry: string): string | undefined {
  const text = localPart.replace(/[\s().-]/g, '');
  if (!/^\+?\d{1,17}$/.test(text)) return undefined;
  if (text.startsWith('+')) return valid(text);
  if (text.startsWith('00')) return valid(`+${text.slice(2)}`);
  // National first (the default country's own numbers), then as an international number without its `+`.
  return valid(text, defaultCountry) ?? valid(`+${text}`) ?? possible(text, defaultCountry);
}

function valid(text: string, defaultCallingCode?: string): string | undefined {
  const parsed = parsePhoneNumberFromString(text, defaultCallingCode ? { defaultCallingCode } : undefined);
  return parsed?.isValid() ? parsed.number : undefined;
}

/** A national number whose length fits the default country's plan. */
function possible(text: string, defaultCallingCode: string): string | undefined {
  const parsed = parsePhoneNumberFromString(text, { defaultCallingCode });
  return parsed?.isPossible() && parsed.countryCallingCode === defaultCallingCode ? parsed.number : undefined;
}
