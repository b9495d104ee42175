import { deaValid } from './checks.js';
import { boundaryBefore, isDigit, type DigitGroups } from './digit-groups.js';
import { near } from './near.js';

/**
 * The detectors whose matches mix letters and digits (Medicare MBI, DEA, ICD-10, dates
 * of birth). Each pattern is sticky (/y) and tried only where a digit group says a match
 * could start; the candidates are visited in text order and one that starts inside the
 * previous match of the same pattern is skipped, so the matches are exactly those of
 * one global pass of the pattern over the whole text.
 */

/** Letters allowed in a Medicare Beneficiary Identifier (no S, L, O, I, B, Z). */
const MBI_ALPHA = '[AC-HJKMNP-RT-Y]';
const MBI_ALNUM = '[AC-HJKMNP-RT-Y0-9]';
const MBI = new RegExp(`\\b[1-9]${MBI_ALPHA}${MBI_ALNUM}\\d-?${MBI_ALPHA}${MBI_ALNUM}\\d-?${MBI_ALPHA}${MBI_ALPHA}\\d\\d\\b`, 'y');
const DEA = /\b[ABCDEFGHJKLMPRSTUX][A-Z9]\d{7}\b/y;
const ICD10 = /\b[A-TV-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?\b/y;

const MONTH = '(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\\.?';
const YEAR = '(?:19|20)\\d{2}';
/**
 * Dates: 03/14/1975, 3/14/75, 14.03.1975, 1975-03-14, 1975/03/14, March 14, 1975,
 * 14 March 1975, 14-Mar-1975. Only a date near a birth word counts (see findDob).
 */
const DATES = new RegExp(
  `\\b(?:\\d{1,2}[/.-]\\d{1,2}[/.-](?:${YEAR}|\\d{2})|${YEAR}[/.-]\\d{1,2}[/.-]\\d{1,2}|${MONTH} \\d{1,2},? ${YEAR}|\\d{1,2}[ -]${MONTH}[ -]${YEAR})\\b`,
  'iy',
);
/** The longest month word the pattern accepts ("september"), for looking back to it. */
const MONTH_WORD_MAX = 9;

const ICD_CONTEXT = /\b(?:diagnos\w*|dx|icd(?:-?10)?|condition|patient|assessment|history of)\b/i;
const DOB_CONTEXT = /\b(?:dob|d\.o\.b|date of birth|born|birth)\b/i;

const A = 65;
const Z = 90;

/** The sticky pattern's match at `index`, or undefined. */
function matchAt(re: RegExp, text: string, index: number): string | undefined {
  re.lastIndex = index;
  return re.exec(text)?.[0];
}

/** MBI: 1EG4-TE5-MK73 or 1EG4TE5MK73; its first group is one digit (1–9) before a letter. */
export function findMbi(g: DigitGroups, found: Set<string>): void {
  const { text, starts, ends } = g;
  for (let k = 0; k < starts.length; k++) {
    const s = starts[k]!;
    if (ends[k] !== s + 1 || text.charCodeAt(s) === 48 || !isDigit(text.charCodeAt(s + 3)) || !boundaryBefore(text, s)) continue;
    const m = matchAt(MBI, text, s);
    if (m) found.add(m.replace(/-/g, ''));
  }
}

/** DEA: two letters (the second may be 9) and seven digits, the last a check digit. */
export function findDea(g: DigitGroups, found: Set<string>): void {
  const { text, starts, ends } = g;
  for (let k = 0; k < starts.length; k++) {
    const s = starts[k]!;
    const len = ends[k]! - s;
    // Seven digits after two letters, or "9" + seven digits after one letter.
    const start = len === 7 ? s - 2 : len === 8 && text.charCodeAt(s) === 57 ? s - 1 : -1;
    if (start < 0) continue;
    const m = matchAt(DEA, text, start);
    if (m && deaValid(m)) found.add(m);
  }
}

/** ICD-10 codes (E11.9, S72.001A) near a clinical word; the code's first digit follows its letter. */
export function findIcd10(g: DigitGroups, found: Set<string>): void {
  const { text, starts } = g;
  let previousEnd = 0;
  for (let k = 0; k < starts.length; k++) {
    const start = starts[k]! - 1;
    const letter = text.charCodeAt(start);
    if (start < previousEnd || letter < A || letter > Z || letter === 85 /* U */ || !boundaryBefore(text, start)) continue;
    const m = matchAt(ICD10, text, start);
    if (!m) continue;
    previousEnd = start + m.length;
    if (near(text, start, m.length, ICD_CONTEXT, 80)) found.add(m.toUpperCase());
  }
}

/**
 * Dates of birth: a date near "DOB", "born", "birth". A date starts with its first
 * digit group, or with a month word just before it ("March 14, 1975"): looked back to.
 */
export function findDob(g: DigitGroups, found: Set<string>): void {
  const { text, starts, ends } = g;
  const state = { previousEnd: 0 };
  for (let k = 0; k < starts.length; k++) {
    const s = starts[k]!;
    const len = ends[k]! - s;
    if (len > 4 || len === 3) continue;
    if (len <= 2 && text.charCodeAt(s - 1) === 32) {
      const month = monthWordBefore(text, s - 1);
      if (month !== undefined) dateAt(text, month, state, found);
    }
    if (dateMayFollow(text, ends[k]!, len) && boundaryBefore(text, s)) dateAt(text, s, state, found);
  }
}

/** The date starting at `start`, if any and not inside the previous one; kept when near a birth word. */
function dateAt(text: string, start: number, state: { previousEnd: number }, found: Set<string>): void {
  if (start < state.previousEnd) return;
  const m = matchAt(DATES, text, start);
  if (!m) return;
  state.previousEnd = start + m.length;
  if (near(text, start, m.length, DOB_CONTEXT, 40)) found.add(m.toLowerCase());
}

/**
 * Whether a date can go on after its first group (cheap, so most numbers cost no match
 * attempt): "/" or "." and a digit; "-" and a digit or a month; a space and a month
 * (14 March 1975), the last two only after one or two digits.
 */
function dateMayFollow(text: string, end: number, len: number): boolean {
  const sep = text.charCodeAt(end);
  if (sep === 47 || sep === 46) return isDigit(text.charCodeAt(end + 1));
  if (sep === 45) return isDigit(text.charCodeAt(end + 1)) || (len <= 2 && isAsciiLetter(text.charCodeAt(end + 1)));
  return sep === 32 && len <= 2 && isAsciiLetter(text.charCodeAt(end + 1));
}

/** Start of the ASCII word (3–9 letters, an optional ".") that ends just before `space`. */
function monthWordBefore(text: string, space: number): number | undefined {
  let i = space - 1;
  if (text.charCodeAt(i) === 46) i--;
  const end = i + 1;
  while (i >= 0 && end - i <= MONTH_WORD_MAX && isAsciiLetter(text.charCodeAt(i))) i--;
  const length = end - (i + 1);
  return length >= 3 && length <= MONTH_WORD_MAX ? i + 1 : undefined;
}

function isAsciiLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}
