/** Check-digit and validity rules the detectors use; pure functions. */

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
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
  const n2 = Number(digits.slice(0, 2));
  const n3 = Number(digits.slice(0, 3));
  const n4 = Number(digits.slice(0, 4));
  const len = digits.length;
  if (digits[0] === '4') return len === 13 || len === 16 || len === 19;
  if ((n2 >= 51 && n2 <= 55) || (n4 >= 2221 && n4 <= 2720)) return len === 16;
  if (n2 === 34 || n2 === 37) return len === 15;
  if (n4 === 6011 || n2 === 65 || (n3 >= 644 && n3 <= 649)) return len >= 16 && len <= 19;
  if (n2 === 36 || n2 === 38 || (n3 >= 300 && n3 <= 305)) return len >= 14 && len <= 19;
  if (n4 >= 3528 && n4 <= 3589) return len >= 16 && len <= 19;
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
