import type { DetectorHit } from '../../types.js';
import { InspectTimeoutError, type TextSource } from '../parts.js';
import { findDea, findDob, findIcd10, findMbi } from './codes.js';
import type { DetectorsConfig } from './config.js';
import { findDigitGroups, usefulGroups, type DigitGroups } from './digit-groups.js';
import { findKeywords, keywordMatcher, type KeywordMatcher } from './keywords.js';
import { findCards, findNpi, findSsn } from './numbers.js';
import { compiledPattern, type UserPattern } from './user-pattern.js';

export { detectorsConfigSchema, type DetectorsConfig } from './config.js';
export type { TextSource } from '../parse.js';

type BuiltIn = 'ssn' | 'card' | 'mbi' | 'dea' | 'npi' | 'icd10' | 'dob';

const MRN_CATEGORY = 'phi';

/**
 * The built-in detectors, in the order hits are reported. Each reads the text through
 * its digit groups (digit-groups.ts): every built-in pattern holds a digit, so the text
 * is searched once for digits and each detector looks only around them.
 */
const BUILT_IN: Record<BuiltIn, { category: string; find: (g: DigitGroups, found: Set<string>) => void }> = {
  ssn: { category: 'phi', find: findSsn },
  card: { category: 'pci', find: findCards },
  mbi: { category: 'phi', find: findMbi },
  dea: { category: 'phi', find: findDea },
  npi: { category: 'phi', find: findNpi },
  icd10: { category: 'phi', find: findIcd10 },
  dob: { category: 'phi', find: findDob },
};

/**
 * Each built-in detector's name (as hits and rules name it) and category, MRN included:
 * the policy refuses a rule naming a detector that does not exist (policy/schema.ts).
 */
export const BUILT_IN_DETECTORS: readonly { name: string; category: string }[] = [
  ...Object.entries(BUILT_IN).map(([name, d]) => ({ name, category: d.category })),
  { name: 'mrn', category: MRN_CATEGORY },
];

interface Compiled {
  mrn: UserPattern[];
  custom: { re: UserPattern; c: DetectorsConfig['custom'][number] }[];
  keywords: { k: DetectorsConfig['keywords'][number]; words: string[] }[];
  keywordMatcher: KeywordMatcher;
}

/** Patterns from the configuration are compiled once per configuration object. */
const compiled = new WeakMap<DetectorsConfig, Compiled>();

function compile(config: DetectorsConfig): Compiled {
  let c = compiled.get(config);
  if (!c) {
    const keywords = config.keywords.map((k) => ({ k, words: [...new Set(k.words.map((word) => word.toLowerCase()))] }));
    c = {
      mrn: config.mrn.patterns.map((p) => compiledPattern(p.pattern, p.flags)),
      custom: config.custom.map((x) => ({ re: compiledPattern(x.pattern, x.flags), c: x })),
      keywords,
      keywordMatcher: keywordMatcher(keywords.flatMap((k) => k.words)),
    };
    compiled.set(config, c);
  }
  return c;
}

/**
 * Whether the texts hold more than the detectors scan (maxScanBytes): the rest goes
 * unscanned, so the inspection is incomplete, never "nothing found".
 */
export function exceedsScanBudget(sources: TextSource[], config: DetectorsConfig): boolean {
  let total = 0;
  for (const s of sources) if ((total += s.text.length) > config.maxScanBytes) return true;
  return false;
}

/**
 * Runs the enabled detectors over the message's text and returns, per detector, the
 * number of distinct values found and its score — never the values themselves. Work is
 * bounded by `maxScanBytes`, and by `deadline` (ms since the epoch: the inspection's):
 * checked before each pass of a detector over a text and after each match of a
 * configured pattern (those run on RE2, linear in the text: user-pattern.ts), it ends
 * the scan with an InspectLimitError — a message whose scan did not finish is not one
 * where nothing was found.
 */
export function runDetectors(sources: TextSource[], config: DetectorsConfig, deadline = Infinity): { hits: DetectorHit[]; score: number; categories: string[] } {
  const inTime = <T>(pass: T): T => {
    if (Date.now() > deadline) throw new InspectTimeoutError('the detectors did not finish within the inspection deadline');
    return pass;
  };
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
  const builtIns = (Object.keys(BUILT_IN) as BuiltIn[]).filter((name) => config[name].enabled);
  const groups = builtIns.length ? texts.map((t) => usefulGroups(findDigitGroups(t))) : [];
  for (const name of builtIns) {
    const found = new Set<string>();
    for (const g of groups) inTime(BUILT_IN[name]).find(g, found);
    add(name, BUILT_IN[name].category, found, config[name].weight);
  }
  const patterns = compile(config);
  if (config.mrn.enabled) {
    const found = new Set<string>();
    for (const re of patterns.mrn) for (const t of texts) for (const m of inTime(re).matches(t)) found.add(inTime(m).replace(/\D/g, '') || m);
    add('mrn', MRN_CATEGORY, found, config.mrn.weight);
  }
  for (const { re, c } of patterns.custom) {
    const found = new Set<string>();
    for (const t of texts) for (const m of inTime(re).matches(t)) found.add(inTime(m));
    add(`custom:${c.name}`, c.category, found, c.weight, c.minCount);
  }
  if (patterns.keywords.length) {
    const present = new Set<string>();
    for (const t of texts) findKeywords(inTime(t).toLowerCase(), patterns.keywordMatcher, present);
    for (const { k, words } of patterns.keywords) {
      // Distinct words of the list found (whole words, case-insensitive).
      const found = words.filter((w) => present.has(w)).length;
      if (found >= k.threshold) hits.push({ detector: `keywords:${k.name}`, category: k.category, count: found, score: k.weight });
    }
  }
  const score = hits.reduce((s, h) => s + h.score, 0);
  return { hits, score, categories: [...new Set(hits.map((h) => h.category))].sort() };
}
