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

type Finder = (text: string) => Iterable<string>;

const FINDERS: Record<'ssn' | 'card' | 'mbi' | 'dea' | 'npi' | 'icd10' | 'dob', { category: string; find: Finder }> = {
  ssn: {
    category: 'phi',
    *find(text) {
      for (const m of matches(SSN, text)) if (ssnValid(m[1]!, m[2]!, m[3]!)) yield `${m[1]}${m[2]}${m[3]}`;
      for (const m of matches(BARE9, text)) if (ssnValid(m[1]!, m[2]!, m[3]!) && near(text, m.index, 9, SSN_CONTEXT, 40)) yield m[0];
    },
  },
  card: {
    category: 'pci',
    *find(text) {
      for (const m of matches(CARD, text)) {
        const digits = m[0].replace(/[ -]/g, '');
        if (digits.length >= 13 && digits.length <= 19 && cardPrefixKnown(digits) && luhnValid(digits)) yield digits;
      }
    },
  },
  mbi: {
    category: 'phi',
    *find(text) {
      for (const m of matches(MBI, text)) yield m[0].replace(/-/g, '');
    },
  },
  dea: {
    category: 'phi',
    *find(text) {
      for (const m of matches(DEA, text)) if (deaValid(m[0])) yield m[0];
    },
  },
  npi: {
    category: 'phi',
    *find(text) {
      for (const m of matches(NPI, text)) if (npiValid(m[0]) && near(text, m.index, 10, NPI_CONTEXT, 60)) yield m[0];
    },
  },
  icd10: {
    category: 'phi',
    *find(text) {
      for (const m of matches(ICD10, text)) if (near(text, m.index, m[0].length, ICD_CONTEXT, 80)) yield m[0].toUpperCase();
    },
  },
  dob: {
    category: 'phi',
    *find(text) {
      for (const m of matches(DATES, text)) if (near(text, m.index, m[0].length, DOB_CONTEXT, 40)) yield m[0].toLowerCase();
    },
  },
};

interface Compiled {
  mrn: RegExp[];
  custom: { re: RegExp; c: DetectorsConfig['custom'][number] }[];
  keywords: { k: DetectorsConfig['keywords'][number]; words: { word: string; re: RegExp }[] }[];
}

/** Patterns from the configuration are compiled once per configuration object. */
const compiled = new WeakMap<DetectorsConfig, Compiled>();

function compile(config: DetectorsConfig): Compiled {
  let c = compiled.get(config);
  if (!c) {
    c = {
      mrn: config.mrn.patterns.map((p) => new RegExp(p.pattern, `g${p.flags}`)),
      custom: config.custom.map((x) => ({ re: new RegExp(x.pattern, `g${x.flags}`), c: x })),
      keywords: config.keywords.map((k) => ({
        k,
        words: k.words.map((word) => ({ word: word.toLowerCase(), re: new RegExp(`(?<![\\p{L}\\p{N}])${word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\p{L}\\p{N}])`, 'iu') })),
      })),
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
  for (const [name, d] of Object.entries(FINDERS) as [keyof typeof FINDERS, (typeof FINDERS)[keyof typeof FINDERS]][]) {
    if (!config[name].enabled) continue;
    const found = new Set<string>();
    for (const t of texts) for (const v of d.find(t)) found.add(v);
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
  for (const { k, words } of patterns.keywords) {
    // Distinct words of the list found (whole words, case-insensitive).
    const found = new Set<string>();
    for (const { word, re } of words) if (texts.some((t) => re.test(t))) found.add(word);
    if (found.size >= k.threshold) hits.push({ detector: `keywords:${k.name}`, category: k.category, count: found.size, score: k.weight });
  }
  const score = hits.reduce((s, h) => s + h.score, 0);
  return { hits, score, categories: [...new Set(hits.map((h) => h.category))].sort() };
}
