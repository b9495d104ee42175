/** Check-digit and validity rules the detectors use; pure functions. */

export function luhnValid(digits: string): boolean {
  return luhnValidRange(digits, 0, digits.length);
}

/** Luhn over digits[start, end) (no copy: the card detector checks many spans of one run). */
export function luhnValidRange(digits: string, start: number, end: number): boolean {
  let sum = 0;
  let double = false;
  for (let i = end - 1; i >= start; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return end > start && sum % 10 === 0;
}

/** SSA rules: no area 000, 666 or 900–999, no group 00, no serial 0000, no known fakes. */
export function ssnValid(area: string, group: string, serial: string): boolean {
  const a = Number(area);
  if (a === 0 || a === 666 || a >= 900) return false;
  if (group === '00' || serial === '0000') return false;
  const whole = `${area}${group}${serial}`;
  return whole !== '078051120' && whole !== '219099999' && whole !== '123456789';
}

/** Issuer prefixes of the major card networks. */
export function cardPrefixKnown(digits: string): boolean {
  return cardPrefixAllows(firstFourDigits(digits, 0), digits.length);
}

/** The number made of the four digits at `index` (fewer at the end of the text). */
export function firstFourDigits(digits: string, index: number): number {
  let n = 0;
  for (let i = index; i < index + 4 && i < digits.length; i++) n = n * 10 + (digits.charCodeAt(i) - 48);
  return n;
}

/** Whether a card number of `length` digits may start with these four (`first4`, e.g. 4111). */
export function cardPrefixAllows(first4: number, length: number): boolean {
  const n4 = first4;
  const n3 = Math.floor(n4 / 10);
  const n2 = Math.floor(n4 / 100);
  if (n2 >= 40 && n2 <= 49) return length === 13 || length === 16 || length === 19;
  if ((n2 >= 51 && n2 <= 55) || (n4 >= 2221 && n4 <= 2720)) return length === 16;
  if (n2 === 34 || n2 === 37) return length === 15;
  if (n4 === 6011 || n2 === 65 || (n3 >= 644 && n3 <= 649)) return length >= 16 && length <= 19;
  if (n2 === 36 || n2 === 38 || (n3 >= 300 && n3 <= 305)) return length >= 14 && length <= 19;
  if (n4 >= 3528 && n4 <= 3589) return length >= 16 && length <= 19;
  return false;
}

/** NPI: Luhn over the number with the 80840 health-industry prefix (CMS). */
export function npiValid(npi: string): boolean {
  return /^[12]\d{9}$/.test(npi) && luhnValid(`80840${npi}`);
}

/** DEA: (d1+d3+d5) + 2×(d2+d4+d6), last digit equals d7. */
export function deaValid(dea: string): boolean {
  const d = dea.slice(2).split('').map(Number);
  if (d.length !== 7 || d.some((x) => Number.isNaN(x))) return false;
  const sum = (d[0]! + d[2]! + d[4]!) + 2 * (d[1]! + d[3]! + d[5]!);
  return sum % 10 === d[6];
}
