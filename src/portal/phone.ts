import { parsePhoneNumberFromString } from 'libphonenumber-js';

/**
 * Phone numbers for Secure Text recipients (<digits>@secure.text), normalised to E.164
 * with libphonenumber (Google's numbering plans): a number with its country code (`+`,
 * `00`, or the digits of a full international number) keeps it; a national one gets the
 * default country's (`defaultCountry` is a calling code: 1, 44, 49), national trunk
 * prefix dropped (0 in most of Europe). A number valid in its country's plan wins. A
 * number of the default country that has its shape but a range the plan data does not
 * know (new ranges, fictional 555 numbers such as 15551234567) is taken too, written
 * nationally or with its country code alike: it cannot be someone in another country,
 * and the provider has the last word. Undefined for anything else: a number that would
 * be guessed into another country, or has no country's shape.
 *
 * Idempotent: what it returns normalises to itself, so an identity made from a national
 * number (15551234567) is found again from its E.164 form (+15551234567).
 */
export function normalizePhone(localPart: string, defaultCountry: string): string | undefined {
  const text = localPart.replace(/[\s().-]/g, '');
  if (!/^\+?\d{1,17}$/.test(text)) return undefined;
  const international = text.startsWith('+') ? text : text.startsWith('00') ? `+${text.slice(2)}` : undefined;
  if (international) return valid(international) ?? plausible(international, defaultCountry);
  // National first (the default country's own numbers), then as an international number without its `+`.
  return valid(text, defaultCountry) ?? valid(`+${text}`) ?? plausible(text, defaultCountry);
}

function valid(text: string, defaultCallingCode?: string): string | undefined {
  const parsed = parsePhoneNumberFromString(text, defaultCallingCode ? { defaultCallingCode } : undefined);
  return parsed?.isValid() ? readsBack(parsed.number) : undefined;
}

/**
 * North American numbers: an area code and an exchange of three digits, then four; the
 * area code never starts with 0 or 1 (those are trunk and operator prefixes). The
 * exchange is not checked: the issue's own 555-1234 is fictional, not malformed.
 */
const NANP = /^[2-9]\d{9}$/;

/** A number of the default country whose shape fits its plan (NANP's, else a possible length). */
function plausible(text: string, defaultCallingCode: string): string | undefined {
  const parsed = parsePhoneNumberFromString(text, { defaultCallingCode });
  if (!parsed || parsed.countryCallingCode !== defaultCallingCode) return undefined;
  const shaped = defaultCallingCode === '1' ? NANP.test(parsed.nationalNumber) : parsed.isPossible();
  return shaped ? readsBack(parsed.number) : undefined;
}

/** At most 15 digits (ITU-T E.164); longer ones are a national plan's, never dialled from abroad. */
const E164 = /^\+[1-9]\d{1,14}$/;

/** Whether a stored identity's number is already in E.164 (what normalizePhone returns). */
export const isE164 = (phone: string) => E164.test(phone);

/**
 * The E.164 form, when it reads back as itself. Not always so: a national number after
 * a carrier code can keep a trunk 0 (+86 0…), which a second reading would drop, and the
 * identity made from it would never be found again.
 */
function readsBack(e164: string): string | undefined {
  return isE164(e164) && parsePhoneNumberFromString(e164)?.number === e164 ? e164 : undefined;
}
