/**
 * A naive reference for the built-in detectors and the keyword lists, written from their
 * definitions and sharing no scanning code with src/inspect/detectors: every position of
 * the text is tried, character by character, leftmost first and without overlap (what one
 * global pass of a pattern does). Slow and obvious on purpose: the fast detectors must
 * find exactly what it finds.
 */
import { deaValid, npiValid, ssnValid } from '../../src/inspect/detectors/checks.js';

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isWord = (c: string | undefined) => c !== undefined && /^[A-Za-z0-9_]$/.test(c);
const isUpper = (c: string | undefined) => c !== undefined && c >= 'A' && c <= 'Z';
/** JavaScript's \b (without the u flag) at index i. */
const boundary = (t: string, i: number) => isWord(t[i - 1]) !== isWord(t[i]);
const digitsAt = (t: string, i: number, n: number) => Array.from({ length: n }, (_, k) => t[i + k]).every(isDigit);

/** Leftmost, non-overlapping matches: `at(i)` gives the match length at i, or 0. */
function scan(t: string, at: (i: number) => number): { index: number; value: string }[] {
  const out: { index: number; value: string }[] = [];
  for (let i = 0; i < t.length; ) {
    const len = at(i);
    if (len > 0) {
      out.push({ index: i, value: t.slice(i, i + len) });
      i += len;
    } else i++;
  }
  return out;
}

function near(t: string, index: number, length: number, words: RegExp, reach: number): boolean {
  return words.test(t.slice(Math.max(0, index - reach), index + length + reach));
}

const SSN_WORDS = /\b(?:ssn|social security)\b/i;
const NPI_WORDS = /\b(?:npi|provider|prescriber|physician)\b/i;
const ICD_WORDS = /\b(?:diagnos\w*|dx|icd(?:-?10)?|condition|patient|assessment|history of)\b/i;
const DOB_WORDS = /\b(?:dob|d\.o\.b|date of birth|born|birth)\b/i;

function ssn(t: string): Set<string> {
  const out = new Set<string>();
  const sep = (c: string | undefined) => c === ' ' || c === '-';
  const formatted = (i: number) => (boundary(t, i) && digitsAt(t, i, 3) && sep(t[i + 3]) && digitsAt(t, i + 4, 2) && sep(t[i + 6]) && digitsAt(t, i + 7, 4) && boundary(t, i + 11) ? 11 : 0);
  for (const m of scan(t, formatted)) if (ssnValid(m.value.slice(0, 3), m.value.slice(4, 6), m.value.slice(7))) out.add(m.value.replace(/\D/g, ''));
  const bare = (i: number) => (boundary(t, i) && digitsAt(t, i, 9) && boundary(t, i + 9) ? 9 : 0);
  for (const m of scan(t, bare)) if (ssnValid(m.value.slice(0, 3), m.value.slice(3, 5), m.value.slice(5)) && near(t, m.index, 9, SSN_WORDS, 40)) out.add(m.value);
  return out;
}

function npi(t: string): Set<string> {
  const at = (i: number) => (boundary(t, i) && (t[i] === '1' || t[i] === '2') && digitsAt(t, i + 1, 9) && boundary(t, i + 10) ? 10 : 0);
  return new Set(scan(t, at).filter((m) => npiValid(m.value) && near(t, m.index, 10, NPI_WORDS, 60)).map((m) => m.value));
}

/** Issuer prefixes, from the networks' published ranges. */
function issuerAllows(d: string): boolean {
  const p = (n: number) => Number(d.slice(0, n));
  const len = d.length;
  if (d.startsWith('4')) return [13, 16, 19].includes(len);
  if ((p(2) >= 51 && p(2) <= 55) || (p(4) >= 2221 && p(4) <= 2720)) return len === 16;
  if (['34', '37'].includes(d.slice(0, 2))) return len === 15;
  if (d.startsWith('6011') || d.startsWith('65') || (p(3) >= 644 && p(3) <= 649)) return len >= 16;
  if (d.startsWith('36') || d.startsWith('38') || (p(3) >= 300 && p(3) <= 305)) return len >= 14;
  if (p(4) >= 3528 && p(4) <= 3589) return len >= 16;
  return false;
}

function luhn(d: string): boolean {
  const sum = [...d].reverse().reduce((s, c, k) => {
    const v = Number(c) * (k % 2 ? 2 : 1);
    return s + (v > 9 ? v - 9 : v);
  }, 0);
  return sum % 10 === 0;
}

/** Cards: at each start, the longest valid span of 13–19 digits with single spaces or hyphens between them. */
function card(t: string): Set<string> {
  const out = new Set<string>();
  const at = (i: number) => {
    if (!isDigit(t[i]) || !boundary(t, i)) return 0;
    const ends: number[] = [];
    let digits = 0;
    for (let k = i; k < t.length && digits <= 19; k++) {
      if (isDigit(t[k])) {
        digits++;
        if (digits >= 13 && digits <= 19 && boundary(t, k + 1)) ends.push(k + 1);
      } else if (!((t[k] === ' ' || t[k] === '-') && isDigit(t[k - 1]) && isDigit(t[k + 1]))) break;
    }
    for (const end of ends.reverse()) {
      const d = t.slice(i, end).replace(/[ -]/g, '');
      if (issuerAllows(d) && luhn(d)) return end - i;
    }
    return 0;
  };
  for (const m of scan(t, at)) out.add(m.value.replace(/[ -]/g, ''));
  return out;
}

const MBI_LETTERS = 'ACDEFGHJKMNPQRTUVWXY';
function mbi(t: string): Set<string> {
  const letter = (c: string | undefined) => c !== undefined && MBI_LETTERS.includes(c);
  const alnum = (c: string | undefined) => letter(c) || isDigit(c);
  const at = (i: number) => {
    if (!boundary(t, i) || !isDigit(t[i]) || t[i] === '0') return 0;
    // [1-9] A AN D -? A AN D -? A A D D, the hyphens taken when present.
    const shape = ['A', 'N', 'D', '-', 'A', 'N', 'D', '-', 'A', 'A', 'D', 'D'];
    let k = i + 1;
    for (const s of shape) {
      const c = t[k];
      if (s === '-') {
        if (c === '-') k++;
        continue;
      }
      if (!(s === 'A' ? letter(c) : s === 'N' ? alnum(c) : isDigit(c))) return 0;
      k++;
    }
    return boundary(t, k) ? k - i : 0;
  };
  return new Set(scan(t, at).map((m) => m.value.replace(/-/g, '')));
}

function dea(t: string): Set<string> {
  const at = (i: number) => (boundary(t, i) && 'ABCDEFGHJKLMPRSTUX'.includes(t[i] ?? '-') && (isUpper(t[i + 1]) || t[i + 1] === '9') && digitsAt(t, i + 2, 7) && boundary(t, i + 9) ? 9 : 0);
  return new Set(scan(t, at).filter((m) => deaValid(m.value)).map((m) => m.value));
}

function icd10(t: string): Set<string> {
  const code = (c: string | undefined) => isDigit(c) || isUpper(c);
  const at = (i: number) => {
    if (!boundary(t, i) || !isUpper(t[i]) || t[i] === 'U' || !isDigit(t[i + 1]) || !code(t[i + 2])) return 0;
    // The optional ".XXXX" part, longest first, then none: the first followed by a boundary.
    if (t[i + 3] === '.') {
      let n = 0;
      while (n < 4 && code(t[i + 4 + n])) n++;
      for (; n >= 1; n--) if (boundary(t, i + 4 + n)) return 4 + n;
    }
    return boundary(t, i + 3) ? 3 : 0;
  };
  return new Set(scan(t, at).filter((m) => near(t, m.index, m.value.length, ICD_WORDS, 80)).map((m) => m.value.toUpperCase()));
}

const MONTH = '(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\\.?';
const YEAR = '(?:19|20)\\d\\d';
/** The date forms, in the order they are tried at a position; each must end at a boundary. */
const DATE_FORMS = [
  `\\d{1,2}[/.-]\\d{1,2}[/.-](?:${YEAR}|\\d\\d)`, // 03/14/1975, 3/14/75
  `${YEAR}[/.-]\\d{1,2}[/.-]\\d{1,2}`, // 1975-03-14
  `${MONTH} \\d{1,2},? ${YEAR}`, // March 14, 1975
  `\\d{1,2}[ -]${MONTH}[ -]${YEAR}`, // 14 March 1975, 14-Mar-1975
].map((form) => new RegExp(`(?:${form})\\b`, 'iy'));

function dob(t: string): Set<string> {
  const at = (i: number) => {
    if (!boundary(t, i)) return 0;
    for (const form of DATE_FORMS) {
      form.lastIndex = i;
      const m = form.exec(t);
      if (m) return m[0].length;
    }
    return 0;
  };
  return new Set(scan(t, at).filter((m) => near(t, m.index, m.value.length, DOB_WORDS, 40)).map((m) => m.value.toLowerCase()));
}

export const REFERENCE = { ssn, card, mbi, dea, npi, icd10, dob };

/** Words of the list that occur as whole words (no letter or digit of any script around). */
export function referenceKeywords(text: string, words: string[]): Set<string> {
  const lower = text.toLowerCase();
  const letterOrDigit = (c: string | undefined) => c !== undefined && /[\p{L}\p{N}]/u.test(c);
  const found = new Set<string>();
  for (const w of words.map((x) => x.toLowerCase())) {
    for (let i = 0; i + w.length <= lower.length; i++) {
      if (!lower.startsWith(w, i)) continue;
      const before = i > 0 ? String.fromCodePoint(lower.codePointAt(i - 1 - (i >= 2 && /[\udc00-\udfff]/.test(lower[i - 1]!) ? 1 : 0))!) : undefined;
      const after = i + w.length < lower.length ? String.fromCodePoint(lower.codePointAt(i + w.length)!) : undefined;
      if (!letterOrDigit(before) && !letterOrDigit(after)) found.add(w);
    }
  }
  return found;
}
