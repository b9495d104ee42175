/**
 * Keyword dictionaries: which words of the lists occur in a text as whole words
 * (case-insensitive; no letter or digit, in any script, on either side).
 *
 * All words of all lists are found in one pass of one alternation over the lower-cased
 * text, instead of one substring search per word: on English prose, where the words'
 * first letters are everywhere, twenty searches cost about four times the one pass.
 * The pass only proposes places (a word starting after anything but an ASCII letter or
 * digit); each place is then checked for every word, so words that share a start or
 * overlap are all found.
 */
export interface KeywordMatcher {
  /** Distinct lower-case words of all lists. */
  words: string[];
  /** Proposes word starts: the character before one, then a word. */
  starts: RegExp;
}

export function keywordMatcher(words: string[]): KeywordMatcher {
  const distinct = [...new Set(words.map((w) => w.toLowerCase()))];
  const alternation = distinct.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  return { words: distinct, starts: new RegExp(`[^a-z0-9](?:${alternation})`, 'g') };
}

/** Adds to `found` the words that occur in `lower` (a lower-cased text) as whole words. */
export function findKeywords(lower: string, m: KeywordMatcher, found: Set<string>): void {
  if (!m.words.length) return;
  checkAt(lower, 0, m.words, found);
  const re = m.starts;
  re.lastIndex = 0;
  for (let hit = re.exec(lower); hit; hit = re.exec(lower)) {
    checkAt(lower, hit.index + 1, m.words, found);
    re.lastIndex = hit.index + 1; // the next start may overlap this word
  }
}

function checkAt(lower: string, index: number, words: string[], found: Set<string>): void {
  if (LETTER_OR_DIGIT.test(codePointBefore(lower, index))) return;
  for (const word of words) {
    if (found.has(word) || !lower.startsWith(word, index)) continue;
    const end = index + word.length;
    if (!LETTER_OR_DIGIT.test(end < lower.length ? String.fromCodePoint(lower.codePointAt(end)!) : '')) found.add(word);
  }
}

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;

function codePointBefore(text: string, index: number): string {
  if (index === 0) return '';
  const low = text.charCodeAt(index - 1);
  const start = low >= 0xdc00 && low <= 0xdfff && index >= 2 ? index - 2 : index - 1;
  return String.fromCodePoint(text.codePointAt(start)!);
}
