import { cardPrefixAllows, firstFourDigits, luhnValidRange, npiValid, ssnValid } from './checks.js';
import { boundaryAfter, boundaryBefore, isSpaceOrHyphen, type DigitGroups } from './digit-groups.js';
import { near } from './near.js';

/**
 * The detectors made of digits only (SSN, card, NPI), read straight from the digit
 * groups: a match is a sequence of whole groups joined by single spaces or hyphens, with
 * a word boundary on both sides, so no regular expression is needed to find one.
 */

const SSN_CONTEXT = /\b(?:ssn|social security)\b/i;
const NPI_CONTEXT = /\b(?:npi|provider|prescriber|physician)\b/i;

const length = (g: DigitGroups, k: number) => g.ends[k]! - g.starts[k]!;
const standalone = (g: DigitGroups, k: number) => boundaryBefore(g.text, g.starts[k]!) && boundaryAfter(g.text, g.ends[k]!);
/** Group k+1 follows group k after exactly one space or hyphen. */
const joined = (g: DigitGroups, k: number) => g.starts[k + 1] === g.ends[k]! + 1 && isSpaceOrHyphen(g.text.charCodeAt(g.ends[k]!));

/** "123-45-6789" or "123 45 6789" anywhere; nine bare digits only near "SSN" / "social security". */
export function findSsn(g: DigitGroups, found: Set<string>): void {
  const { text, starts, ends } = g;
  for (let k = 0; k < starts.length; k++) {
    const len = length(g, k);
    if (len === 3 && k + 2 < starts.length && boundaryBefore(text, starts[k]!) && joined(g, k) && length(g, k + 1) === 2 && joined(g, k + 1) && length(g, k + 2) === 4 && boundaryAfter(text, ends[k + 2]!)) {
      const [area, group, serial] = [text.slice(starts[k]!, ends[k]), text.slice(starts[k + 1]!, ends[k + 1]), text.slice(starts[k + 2]!, ends[k + 2])];
      if (ssnValid(area, group, serial)) found.add(`${area}${group}${serial}`);
    } else if (len === 9 && standalone(g, k)) {
      const s = starts[k]!;
      const v = text.slice(s, s + 9);
      if (ssnValid(v.slice(0, 3), v.slice(3, 5), v.slice(5)) && near(text, s, 9, SSN_CONTEXT, 40)) found.add(v);
    }
  }
}

/** NPI: ten digits starting with 1 or 2, valid with the 80840 prefix, near a provider word. */
export function findNpi(g: DigitGroups, found: Set<string>): void {
  const { text, starts } = g;
  for (let k = 0; k < starts.length; k++) {
    if (length(g, k) !== 10 || !standalone(g, k)) continue;
    const v = text.slice(starts[k]!, starts[k]! + 10);
    if (npiValid(v) && near(text, starts[k]!, 10, NPI_CONTEXT, 60)) found.add(v);
  }
}

const MIN_CARD = 13;
const MAX_CARD = 19;

/**
 * Card numbers: in each run of groups joined by single spaces or hyphens, the candidates
 * start at a group with a word boundary before and end at a group with one after, and
 * hold 13–19 digits. Leftmost first, the longest valid one (known issuer prefix, Luhn)
 * at each start, runs not overlapping — so a card followed by more digits (a CVV, an
 * expiry "12/25") is still found, which one greedy pattern over the run missed.
 */
export function findCards(g: DigitGroups, found: Set<string>): void {
  for (let first = 0; first < g.starts.length; ) {
    let last = first;
    let digits = length(g, first);
    while (last + 1 < g.starts.length && joined(g, last)) digits += length(g, ++last);
    if (digits >= MIN_CARD) cardsInRun(g, first, last, found);
    first = last + 1;
  }
}

function cardsInRun(g: DigitGroups, first: number, last: number, found: Set<string>): void {
  const { text, starts, ends } = g;
  const groups = last - first + 1;
  // The run's digits without separators; offset[k]: where its k-th group's digits start.
  let digits = '';
  const offset = new Int32Array(groups + 1);
  for (let k = 0; k < groups; k++) {
    digits += text.slice(starts[first + k]!, ends[first + k]);
    offset[k + 1] = digits.length;
  }
  // The furthest group a candidate from group i may end at (at most 19 digits): it only
  // moves forward with i, so a long run costs linear time, not quadratic.
  let furthest = 0;
  for (let i = 0; i < groups; ) {
    const from = offset[i]!;
    if (furthest < i) furthest = i;
    while (furthest + 1 < groups && offset[furthest + 2]! - from <= MAX_CARD) furthest++;
    let cardEnd = -1;
    if (i > 0 || boundaryBefore(text, starts[first]!)) {
      const first4 = firstFourDigits(digits, from);
      for (let j = furthest; j >= i && offset[j + 1]! - from >= MIN_CARD; j--) {
        const to = offset[j + 1]!;
        if (to - from > MAX_CARD || !cardPrefixAllows(first4, to - from) || (j === groups - 1 && !boundaryAfter(text, ends[last]!))) continue;
        if (luhnValidRange(digits, from, to)) {
          found.add(digits.slice(from, to));
          cardEnd = j;
          break;
        }
      }
    }
    i = cardEnd >= 0 ? cardEnd + 1 : i + 1;
  }
}
