import type { DetectorHit } from '../../types.js';
import type { TextSource } from '../parse.js';
import { cardPrefixKnown, deaValid, luhnValid, npiValid, ssnValid } from './checks.js';
import type { DetectorsConfig } from './config.js';

export { detectorsConfigSchema, type DetectorsConfig } from './config.js';
export type { TextSource } from '../parse.js';

/** Letters allowed in a Medicare Beneficiary Identifier (no S, L, O, I, B, Z). */
const MBI_ALPHA = '[AC-HJKMNP-RT-Y]';
const MBI_ALNUM = '[AC-HJKMNP-RT-Y0-9]';
const MBI = new RegExp(`\\b[1-9]${MBI_ALPHA}${MBI_ALNUM}\\d-?${MBI_ALPHA}${MBI_ALNUM}\\d-?${MBI_ALPHA}${MBI_ALPHA}\\d\\d\\b`, 'g');
const SSN = /\b(\d{3})[- ](\d{2})[- ](\d{4})\b/g;
const BARE9 = /\b(\d{3})(\d{2})(\d{4})\b/g;
const CARD = /\b\d(?:[ -]?\d){12,18}\b/g;
const NPI = /\b[12]\d{9}\b/g;
const DEA = /\b[ABCDEFGHJKLMPRSTUX][A-Z9]\d{7}\b/g;
const ICD10 = /\b[A-TV-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?\b/g;
const DATES = /\b(?:\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)\d{2}|(?:19|20)\d{2}-\d{1,2}-\d{1,2}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.? \d{1,2},? (?:19|20)\d{2}|\d{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.? (?:19|20)\d{2})\b/gi;

const SSN_CONTEXT = /\b(?:ssn|social security)\b/i;
const NPI_CONTEXT = /\b(?:npi|provider|prescriber|physician)\b/i;
const ICD_CONTEXT = /\b(?:diagnos\w*|dx|icd(?:-?10)?|condition|patient|assessment|history of)\b/i;
const DOB_CONTEXT = /\b(?:dob|d\.o\.b|date of birth|born|birth)\b/i;

/** Linear scan, no backtracking: every pattern above is a plain sequence of classes. */
function* matches(re: RegExp, text: string): Generator<RegExpExecArray> {
  re.lastIndex = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) yield m;
}

function near(text: string, index: number, length: number, context: RegExp, reach: number): boolean {
  return context.test(text.slice(Math.max(0, index - reach), index + length + reach));
}

/**
 * Each pass over a message's text costs about the same whatever the pattern, so the
 * built-in detectors share passes instead of running one each (they were 30 passes over
 * every message). Every SSN, card and NPI match is made of digits and single spaces or
 * hyphens, bounded by word boundaries, so it lies inside one maximal "digit run": one
 * pass finds the runs and the specific patterns run on those short strings only. The
 * Medicare, DEA and ICD-10 codes are upper-case tokens with distinct first characters,
 * so one alternation finds all three. Results are the same as separate passes.
 */
const DIGIT_RUN = /\b\d(?:[ -]?\d)*\b/g;
/** SSN (9), NPI (10) and card numbers (13+) all have at least nine digits. */
const MIN_RUN = 9;
/** One word boundary in front of the alternation, so a position inside a word fails at once. */
const CODES = new RegExp(`\\b(?:(?<mbi>${unbounded(MBI)})|(?<dea>${unbounded(DEA)})|(?<icd>${unbounded(ICD10)}))`, 'g');

function unbounded(re: RegExp): string {
  if (!re.source.startsWith('\\b')) throw new Error(`pattern must start with \\b: ${re.source}`);
  return re.source.slice(2);
}

interface Scanned {
  text: string;
  /** Digit runs long enough to hold an SSN, NPI or card number. */
  runs: { index: number; value: string }[];
  mbi: string[];
  dea: string[];
  icd: { index: number; value: string }[];
}

function scan(text: string): Scanned {
  const out: Scanned = { text, runs: [], mbi: [], dea: [], icd: [] };
  for (const m of matches(DIGIT_RUN, text)) if (m[0].length >= MIN_RUN) out.runs.push({ index: m.index, value: m[0] });
  for (const m of matches(CODES, text)) {
    const g = m.groups as { mbi?: string; dea?: string; icd?: string };
    if (g.mbi) {
      out.mbi.push(g.mbi);
      // An ICD-10-shaped group inside a hyphenated Medicare id ("T95" in 1EG4-T95-MK73).
      for (const inner of matches(ICD10, g.mbi)) out.icd.push({ index: m.index + inner.index, value: inner[0] });
    } else if (g.dea) out.dea.push(g.dea);
    else if (g.icd) out.icd.push({ index: m.index, value: g.icd });
  }
  return out;
}

/** Matches of `re` inside the digit runs, with indexes into the whole text. */
function* inRuns(re: RegExp, s: Scanned): Generator<{ m: RegExpExecArray; index: number }> {
  for (const run of s.runs) for (const m of matches(re, run.value)) yield { m, index: run.index + m.index };
}

type Finder = (s: Scanned) => Iterable<string>;

const FINDERS: Record<'ssn' | 'card' | 'mbi' | 'dea' | 'npi' | 'icd10' | 'dob', { category: string; find: Finder }> = {
  ssn: {
    category: 'phi',
    *find(s) {
      for (const { m } of inRuns(SSN, s)) if (ssnValid(m[1]!, m[2]!, m[3]!)) yield `${m[1]}${m[2]}${m[3]}`;
      for (const { m, index } of inRuns(BARE9, s)) if (ssnValid(m[1]!, m[2]!, m[3]!) && near(s.text, index, 9, SSN_CONTEXT, 40)) yield m[0];
    },
  },
  card: {
    category: 'pci',
    *find(s) {
      for (const { m } of inRuns(CARD, s)) {
        const digits = m[0].replace(/[ -]/g, '');
        if (digits.length >= 13 && digits.length <= 19 && cardPrefixKnown(digits) && luhnValid(digits)) yield digits;
      }
    },
  },
  mbi: {
    category: 'phi',
    *find(s) {
      for (const v of s.mbi) yield v.replace(/-/g, '');
    },
  },
  dea: {
    category: 'phi',
    *find(s) {
      for (const v of s.dea) if (deaValid(v)) yield v;
    },
  },
  npi: {
    category: 'phi',
    *find(s) {
      for (const { m, index } of inRuns(NPI, s)) if (npiValid(m[0]) && near(s.text, index, 10, NPI_CONTEXT, 60)) yield m[0];
    },
  },
  icd10: {
    category: 'phi',
    *find(s) {
      for (const { index, value } of s.icd) if (near(s.text, index, value.length, ICD_CONTEXT, 80)) yield value.toUpperCase();
    },
  },
  dob: {
    category: 'phi',
    *find(s) {
      for (const m of matches(DATES, s.text)) if (near(s.text, m.index, m[0].length, DOB_CONTEXT, 40)) yield m[0].toLowerCase();
    },
  },
};

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;

/**
 * Whether `word` (lower case) occurs in `lower` (the text, lower-cased once) as a whole
 * word. A plain substring search lets the engine skip ahead (Boyer-Moore); a
 * case-insensitive or look-behind regexp cannot, and was 8× slower on ordinary text.
 */
function hasWholeWord(lower: string, word: string): boolean {
  for (let i = lower.indexOf(word); i >= 0; i = lower.indexOf(word, i + 1)) {
    const end = i + word.length;
    if (!LETTER_OR_DIGIT.test(codePointBefore(lower, i)) && !LETTER_OR_DIGIT.test(end < lower.length ? String.fromCodePoint(lower.codePointAt(end)!) : '')) return true;
  }
  return false;
}

function codePointBefore(text: string, index: number): string {
  if (index === 0) return '';
  const low = text.charCodeAt(index - 1);
  const start = low >= 0xdc00 && low <= 0xdfff && index >= 2 ? index - 2 : index - 1;
  return String.fromCodePoint(text.codePointAt(start)!);
}

interface Compiled {
  mrn: RegExp[];
  custom: { re: RegExp; c: DetectorsConfig['custom'][number] }[];
  keywords: { k: DetectorsConfig['keywords'][number]; words: string[] }[];
}

/** Patterns from the configuration are compiled once per configuration object. */
const compiled = new WeakMap<DetectorsConfig, Compiled>();

function compile(config: DetectorsConfig): Compiled {
  let c = compiled.get(config);
  if (!c) {
    c = {
      mrn: config.mrn.patterns.map((p) => new RegExp(p.pattern, `g${p.flags}`)),
      custom: config.custom.map((x) => ({ re: new RegExp(x.pattern, `g${x.flags}`), c: x })),
      keywords: config.keywords.map((k) => ({ k, words: [...new Set(k.words.map((word) => word.toLowerCase()))] })),
    };
    compiled.set(config, c);
  }
  return c;
}

/**
 * Runs the enabled detectors over the message's text and returns, per detector, the
 * number of distinct values found and its score — never the values themselves. Work is
 * bounded by `maxScanBytes`.
 */
export function runDetectors(sources: TextSource[], config: DetectorsConfig): { hits: DetectorHit[]; score: number; categories: string[] } {
  let budget = config.maxScanBytes;
  const texts: string[] = [];
  for (const s of sources) {
    if (budget <= 0) break;
    const t = s.text.length > budget ? s.text.slice(0, budget) : s.text;
    budget -= t.length;
    texts.push(t);
  }
  const hits: DetectorHit[] = [];
  const add = (detector: string, category: string, values: Set<string>, weight: number, minCount = 1) => {
    if (values.size >= minCount && values.size > 0) hits.push({ detector, category, count: values.size, score: values.size * weight });
  };
  // The shared passes run only when a built-in detector needs them.
  const scanned = Object.keys(FINDERS).some((name) => config[name as keyof typeof FINDERS].enabled) ? texts.map(scan) : [];
  for (const [name, d] of Object.entries(FINDERS) as [keyof typeof FINDERS, (typeof FINDERS)[keyof typeof FINDERS]][]) {
    if (!config[name].enabled) continue;
    const found = new Set<string>();
    for (const t of scanned) for (const v of d.find(t)) found.add(v);
    add(name, d.category, found, config[name].weight);
  }
  const patterns = compile(config);
  if (config.mrn.enabled) {
    const found = new Set<string>();
    for (const re of patterns.mrn) for (const t of texts) for (const m of matches(re, t)) found.add(m[0].replace(/\D/g, '') || m[0]);
    add('mrn', 'phi', found, config.mrn.weight);
  }
  for (const { re, c } of patterns.custom) {
    const found = new Set<string>();
    for (const t of texts) for (const m of matches(re, t)) found.add(m[0]);
    add(`custom:${c.name}`, c.category, found, c.weight, c.minCount);
  }
  const lowered = patterns.keywords.length ? texts.map((t) => t.toLowerCase()) : [];
  for (const { k, words } of patterns.keywords) {
    // Distinct words of the list found (whole words, case-insensitive).
    const found = new Set<string>();
    for (const word of words) if (lowered.some((t) => hasWholeWord(t, word))) found.add(word);
    if (found.size >= k.threshold) hits.push({ detector: `keywords:${k.name}`, category: k.category, count: found.size, score: k.weight });
  }
  const score = hits.reduce((s, h) => s + h.score, 0);
  return { hits, score, categories: [...new Set(hits.map((h) => h.category))].sort() };
}
