/**
 * Phone numbers for Secure Text recipients (<digits>@secure.text), normalised to E.164.
 * Numbers with a leading country code are kept; national numbers get the default
 * country code. Returns undefined for anything that cannot be a valid number.
 */
export function normalizePhone(localPart: string, defaultCountry: string): string | undefined {
  const digits = localPart.replace(/[\s().-]/g, '');
  if (!/^\+?\d+$/.test(digits)) return undefined;
  let e164: string;
  if (digits.startsWith('+')) e164 = digits;
  else if (digits.startsWith('00')) e164 = `+${digits.slice(2)}`;
  else if (defaultCountry === '1' && digits.length === 11 && digits.startsWith('1')) e164 = `+${digits}`;
  else if (defaultCountry === '1' && digits.length === 10) e164 = `+1${digits}`;
  else if (defaultCountry !== '1' && digits.startsWith('0')) e164 = `+${defaultCountry}${digits.slice(1)}`;
  else e164 = `+${digits}`;
  const national = e164.slice(1);
  // E.164: at most 15 digits, no leading zero in the country code.
  if (national.length < 8 || national.length > 15 || national.startsWith('0')) return undefined;
  // North American numbers: an area code never starts with 0 or 1.
  if (national.startsWith('1') && national.length === 11 && /^[01]/.test(national.slice(1))) return undefined;
  return e164;
}
