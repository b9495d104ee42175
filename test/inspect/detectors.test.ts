import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findDea, findDob, findIcd10, findMbi } from '../../src/inspect/detectors/codes.js';
import { findDigitGroups, usefulGroups, type DigitGroups } from '../../src/inspect/detectors/digit-groups.js';
import { detectorsConfigSchema, runDetectors } from '../../src/inspect/detectors/index.js';
import { findCards, findNpi, findSsn } from '../../src/inspect/detectors/numbers.js';
import { parseMessage } from '../../src/inspect/parse.js';
import { REFERENCE, referenceKeywords } from './reference-detectors.js';

const config = detectorsConfigSchema.parse({});
const scan = (text: string, cfg = config) => runDetectors([{ source: 'text', text }], cfg);
const count = (text: string, detector: string, cfg = config) => scan(text, cfg).hits.find((h) => h.detector === detector)?.count ?? 0;

describe('detectors: true positives and near-misses', () => {
  const cases: [string, string, number][] = [
    // SSN
    ['ssn', 'SSN 123-45-6780 on file', 1],
    ['ssn', 'social 524 12 3456', 1],
    ['ssn', 'ssn: 524123456', 1],
    ['ssn', 'order 524123456 shipped', 0], // bare 9 digits without context
    ['ssn', '000-12-3456', 0],
    ['ssn', '666-12-3456', 0],
    ['ssn', '912-12-3456', 0],
    ['ssn', '524-00-3456', 0],
    ['ssn', '524-12-0000', 0],
    ['ssn', '078-05-1120', 0], // the famous wallet-card number
    ['ssn', 'same 524-12-3456 twice 524-12-3456', 1], // distinct values
    // cards
    ['card', 'Visa 4111 1111 1111 1111', 1],
    ['card', 'MC 5555555555554444', 1],
    ['card', 'Amex 3782-822463-10005', 1],
    ['card', '4111 1111 1111 1112', 0], // fails Luhn
    ['card', '9111111111111111', 0], // passes no known prefix
    ['card', 'Visa 4111111111111111 123', 1], // card, then its CVV
    ['card', '4111 1111 1111 1111 12/25', 1], // card, then its expiry
    ['card', 'ref 12 4111-1111-1111-1111', 1], // digits before the card
    ['card', 'Amex 378282246310005 exp 0925 cvv 1234', 1],
    ['card', '41111111111111111', 0], // 17 digits in one piece: not cut inside a group
    ['card', 'x4111111111111111', 0], // no word boundary in front
    // NPI (1234567893 is CMS's documented example)
    ['npi', 'Provider NPI 1234567893', 1],
    ['npi', 'NPI 1234567890', 0], // fails the 80840 check
    ['npi', 'invoice 1234567893', 0], // no context
    // MBI
    ['mbi', 'Medicare 1EG4-TE5-MK73', 1],
    ['mbi', 'Medicare 1EG4TE5MK73', 1],
    ['mbi', 'Medicare 1SG4-TE5-MK73', 0], // S is not allowed
    // DEA: AB1234563 → (1+3+5) + 2*(2+4+6) = 33 → check digit 3
    ['dea', 'DEA AB1234563', 1],
    ['dea', 'DEA AB1234564', 0],
    ['dea', 'DEA NB1234563', 0], // N is not a registrant type
    // ICD-10 with context
    ['icd10', 'Diagnosis: E11.9 type 2 diabetes', 1],
    ['icd10', 'patient history of S72.001A', 1],
    ['icd10', 'Flight E11.9 departs at nine', 0],
    // DOB
    ['dob', 'DOB: 03/14/1975', 1],
    ['dob', 'born on March 14, 1975', 1],
    ['dob', 'date of birth 1975-03-14', 1],
    ['dob', 'meeting on 03/14/1975', 0],
    ['dob', 'DOB: 3/14/75', 1], // two-digit year
    ['dob', 'born 14-Mar-1975', 1],
    ['dob', 'Date of birth: 1975/03/14', 1],
    ['dob', 'birth date 14 March 1975', 1],
    ['dob', 'DOB Mar. 14 1975', 1],
    ['dob', 'invoice 3/14/75 paid', 0], // dates without context
    ['dob', 'shipped 14-Mar-1975', 0],
    ['dob', 'version 1975/03/14', 0],
    ['dob', 'DOB: 3/14/7', 0], // not a date
    ['dob', 'DOB: 3/14/1875', 0], // four-digit years are 19xx or 20xx
    // MRN default pattern
    ['mrn', 'MRN: 00123456', 1],
    ['mrn', 'ref 00123456', 0],
  ];
  for (const [detector, text, n] of cases) it(`${detector}: ${JSON.stringify(text)} → ${n}`, () => expect(count(text, detector)).toBe(n));
});

describe('detectors: scoring, categories, configuration', () => {
  it('scores count × weight per detector and lists categories, never the values', () => {
    const r = scan('SSN 524-12-3456, card 4111111111111111, DOB 01/02/1970');
    expect(r.hits.map((h) => [h.detector, h.category, h.count, h.score])).toEqual([
      ['ssn', 'phi', 1, 5],
      ['card', 'pci', 1, 5],
      ['dob', 'phi', 1, 3],
    ]);
    expect(r.score).toBe(13);
    expect(r.categories).toEqual(['pci', 'phi']);
    expect(JSON.stringify(r)).not.toContain('524');
  });

  it('custom regexes and keyword dictionaries with thresholds', () => {
    const cfg = detectorsConfigSchema.parse({
      custom: [{ name: 'project', pattern: 'PRJ-\\d{4}', category: 'confidential', weight: 4, minCount: 2 }],
      keywords: [{ name: 'onc', words: ['oncology', 'biopsy', 'chemotherapy'], threshold: 2, weight: 3 }],
    });
    expect(count('PRJ-1234 only', 'custom:project', cfg)).toBe(0);
    expect(count('PRJ-1234 and PRJ-9999', 'custom:project', cfg)).toBe(2);
    expect(count('oncology ward', 'keywords:onc', cfg)).toBe(0);
    expect(count('Oncology follow-up after the biopsy', 'keywords:onc', cfg)).toBe(2);
    expect(count('the biopsyXL tool and oncologyish notes', 'keywords:onc', cfg)).toBe(0); // whole words only
  });

  it('turns detectors off and reweights them', () => {
    const cfg = detectorsConfigSchema.parse({ ssn: { enabled: false }, card: { weight: 10 } });
    const r = scan('SSN 524-12-3456 card 4111111111111111', cfg);
    expect(r.hits.map((h) => h.detector)).toEqual(['card']);
    expect(r.score).toBe(10);
  });

  it('scans at most maxScanBytes', () => {
    const cfg = detectorsConfigSchema.parse({ maxScanBytes: 100 });
    expect(count(`${'x'.repeat(200)} SSN 524-12-3456`, 'ssn', cfg)).toBe(0);
    expect(count(`SSN 524-12-3456 ${'x'.repeat(200)}`, 'ssn', cfg)).toBe(1);
  });

  it('names the key of a bad pattern', () => {
    const r = detectorsConfigSchema.safeParse({ mrn: { patterns: [{ name: 'x', pattern: '(' }] } });
    expect(r.success).toBe(false);
    expect(r.success ? '' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join()).toMatch(/mrn\.patterns\.0\.pattern: invalid regular expression/);
  });

  it('refuses patterns RE2 cannot run, too large, or matching nothing, naming the key', () => {
    const problems = (input: unknown) => {
      const r = detectorsConfigSchema.safeParse(input);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(problems({ custom: [{ name: 'twice', pattern: '(\\d{3})-\\1' }] })).toEqual([expect.stringMatching(/^custom\.0\.pattern: configured patterns run on RE2, .*no backreferences/)]);
    expect(problems({ mrn: { patterns: [{ name: 'x', pattern: 'MRN(?=\\d)' }] } })).toEqual([expect.stringMatching(/^mrn\.patterns\.0\.pattern: configured patterns run on RE2/)]);
    expect(problems({ custom: [{ name: 'huge', pattern: '.{0,300}x' }] })).toEqual([expect.stringMatching(/^custom\.0\.pattern: this pattern compiles to \d+ instructions, more than 500/)]);
    expect(problems({ custom: [{ name: 'empty', pattern: 'x*' }] })).toEqual([expect.stringMatching(/^custom\.0\.pattern: this pattern matches the empty string/)]);
    // Slow on V8, linear on RE2: accepted now.
    expect(problems({ custom: [{ name: 'a', pattern: '(a+)+$' }, { name: 'b', pattern: '(a|aa)+$' }, { name: 'c', pattern: '.*.*.*=' }, { name: 'd', pattern: '(\\d{3}-?){3}' }] })).toEqual([]);
    // Checked with its own flags: \p{L} is a property only with u.
    expect(problems({ custom: [{ name: 'letters', pattern: '\\p{Lu}{3}-\\d+', flags: 'u' }] })).toEqual([]);
    expect(problems({ custom: [{ name: 'bad', pattern: '\\p{Nope}', flags: 'u' }] })).toEqual([expect.stringMatching(/^custom\.0\.pattern: invalid regular expression/)]);
    expect(problems({ custom: [{ name: 'project', pattern: 'PRJ-\\d{4}' }] })).toEqual([]);
  });

  it('runs configured patterns on RE2: slow-on-V8 patterns finish, and find what V8 would', () => {
    const cfg = detectorsConfigSchema.parse({
      custom: [
        { name: 'alt', pattern: '(a|aa)+$' },
        { name: 'dots', pattern: '.*.*.*=' },
        { name: 'poly', pattern: '[a-z]+[a-z]+X', flags: '' },
        { name: 'e-acute', pattern: '\\u00e9t\\u00e9', flags: 'i' },
      ],
    });
    const t0 = Date.now();
    const hostile = runDetectors([{ source: 'text', text: `${'a'.repeat(60)}b ${'a'.repeat(2000)}!` }], cfg, Date.now() + 10_000);
    expect(Date.now() - t0).toBeLessThan(2000); // a bound that catches backtracking (hours here), not speed
    expect(hostile.hits).toEqual([]);
    const found = runDetectors([{ source: 'text', text: 'x=1\naa\nabcX abcdX ÉTÉ été\naaaa' }], cfg).hits.map((h) => `${h.detector}×${h.count}`);
    expect(found).toEqual(['custom:alt×1', 'custom:dots×1', 'custom:poly×2', 'custom:e-acute×2']);
  });

  it('keeps the shipped MRN pattern on V8 and gives the same counts as RE2 would', () => {
    const texts = ['MRN: 1234567 and mrn#7654321, MRN 12345', 'xMRN 1234567', 'MRN 12345678901', 'MRN:\n 1234567'];
    const rewritten = detectorsConfigSchema.parse({ mrn: { patterns: [{ name: 'mrn', pattern: '\\bMRN[:#\\s]*\\d{6,10}(?:\\b)' }] } });
    for (const text of texts) expect({ text, n: count(text, 'mrn', rewritten) }).toEqual({ text, n: count(text, 'mrn') });
    expect(count(texts[0]!, 'mrn')).toBe(2);
  });

  it('stops at the deadline with an inspection error, never with "nothing found"', () => {
    const text = 'SSN 524-12-3456';
    expect(() => runDetectors([{ source: 'text', text }], config, Date.now() - 1)).toThrow(/did not finish within the inspection deadline/);
    expect(runDetectors([{ source: 'text', text }], config, Date.now() + 60_000).hits).toHaveLength(1);
  });

  it('stays linear on hostile input (a generous bound: it catches exponential blow-up, not speed)', () => {
    const hostile = `${'1-'.repeat(200_000)}${'4'.repeat(100_000)}${'a.'.repeat(100_000)}`;
    const t0 = Date.now();
    scan(hostile, detectorsConfigSchema.parse({ maxScanBytes: 2_000_000 }));
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

/**
 * The detectors look only around the digits (digit-groups.ts) for speed. The naive
 * reference (reference-detectors.ts) tries every position of the text instead; on random
 * texts built from true positives, near-misses and their pieces both must find the same
 * values, and runDetectors the same counts.
 */
describe('detectors: the fast scan finds exactly what the naive reference finds', () => {
  const FAST: Record<keyof typeof REFERENCE, (g: DigitGroups, found: Set<string>) => void> = { ssn: findSsn, card: findCards, mbi: findMbi, dea: findDea, npi: findNpi, icd10: findIcd10, dob: findDob };
  const fragments = [
    '524-12-3456', '524 12 3456', '524123456', '4111 1111 1111 1111', '4111-1111-1111-1111', '4111111111111111', '5555555555554444', '378282246310005', '6011000990139424', ' 123', ' 12/25', '12', '-',
    '1234567893', '1234567890', 'AB1234563', 'XB1234563', 'A91234567', '1EG4-TE5-MK73', '1EG4TE5MK73', '1EG4-T95-MK73', 'E11.9', 'S72.001A', 'A12.B34', 'X12', 'U07.1',
    '03/14/1975', '3/14/75', '14.03.1975', '1975-03-14', '1975/03/14', 'March 14, 1975', 'Mar. 14 1975', '14 March 1975', '14-Mar-1975', 'Sept', 'may', '1975', '2024',
    '7', '42', '9', '0000', ' ', '  ', '.', '/', ',', '_', 'é', 'SSN', 'NPI', 'provider', 'diagnosis', 'patient', 'DOB', 'born', 'birth', 'XXXX', 'abc', '\r\n',
  ];
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  /** Fragments glued together, or apart by a space, a separator or a line break. */
  const glue = ['', '', ' ', ' ', ' ', '  ', '-', '/', '.', ', ', '\r\n'];
  const pick = <T,>(list: T[]) => list[Math.floor(random() * list.length)]!;
  const texts = Array.from({ length: 600 }, () => Array.from({ length: 3 + Math.floor(random() * 30) }, () => pick(fragments) + pick(glue)).join(''));

  it('finds the same values as the reference for every built-in detector on 600 random texts, with all digit groups or only the useful ones', () => {
    for (const text of texts) {
      const all = findDigitGroups(text);
      for (const groups of [all, usefulGroups(all)]) {
        const got: Record<string, string[]> = {};
        const expected: Record<string, string[]> = {};
        for (const name of Object.keys(REFERENCE) as (keyof typeof REFERENCE)[]) {
          const found = new Set<string>();
          FAST[name](groups, found);
          got[name] = [...found].sort();
          expected[name] = [...REFERENCE[name](text)].sort();
        }
        expect({ text, values: got }).toEqual({ text, values: expected });
      }
    }
  });

  it('drops the digit groups no detector can use (the smtp-source bench body: all of them)', () => {
    const bench = Array.from({ length: 50 }, (_, i) => `${i % 10}${'X'.repeat(79)}`).join('\r\n');
    expect([findDigitGroups(bench).starts.length, usefulGroups(findDigitGroups(bench)).starts.length]).toEqual([50, 0]);
  });

  it('runDetectors counts agree with the reference, keywords included', () => {
    const words = ['patient', 'born', 'diagnosis', 'é', 'dob', 'mar', 'march 14', 'x'];
    const cfg = detectorsConfigSchema.parse({ mrn: { enabled: false }, keywords: [{ name: 'k', words, threshold: 1, weight: 1 }] });
    for (const text of texts) {
      const r = runDetectors([{ source: 'text', text }], cfg);
      const got = Object.fromEntries(r.hits.map((h) => [h.detector, h.count]));
      const expected: Record<string, number> = {};
      for (const [name, find] of Object.entries(REFERENCE)) if (find(text).size) expected[name] = find(text).size;
      const keywords = referenceKeywords(text, words).size;
      if (keywords) expected['keywords:k'] = keywords;
      expect({ text, counts: got }).toEqual({ text, counts: expected });
    }
  });

  it('on 100 KB of prose with numbers (test/fixtures/prose-100k.eml), the fast scan and the reference agree: nothing found', async () => {
    const parsed = await parseMessage(readFileSync(new URL('../fixtures/prose-100k.eml', import.meta.url)));
    const text = parsed.texts.map((t) => t.text).join('\n');
    expect(text.length).toBeGreaterThan(99_000);
    const groups = findDigitGroups(text);
    expect(groups.starts.length).toBeGreaterThan(1000); // dates, phone numbers, amounts, versions
    for (const [name, find] of Object.entries(FAST)) {
      const found = new Set<string>();
      find(groups, found);
      expect({ name, found: [...found] }).toEqual({ name, found: [...REFERENCE[name as keyof typeof REFERENCE](text)] });
    }
    expect(runDetectors(parsed.texts, config).hits).toEqual([]);
  });
});

/**
 * A guard, not a timing: the built-in detectors look around digits (digit-groups.ts) and
 * must not drift back to a regex pass over the whole text each. Every RegExp search from
 * the start of a long text is counted (patching RegExp.prototype.exec sends test, match,
 * replace and friends through it too); sticky patterns anchored at one place are not
 * passes.
 */
describe('detectors: whole-text regex passes', () => {
  function wholeTextPasses(texts: { text: string }[], run: () => void): string[] {
    const long = new Set(texts.map((t) => t.text.length).filter((n) => n > 1000));
    const passes: string[] = [];
    const exec = Object.getOwnPropertyDescriptor(RegExp.prototype, 'exec')!;
    const original = RegExp.prototype.exec;
    Object.defineProperty(RegExp.prototype, 'exec', {
      ...exec,
      value(this: RegExp, input: string) {
        const fromStart = !(this.global || this.sticky) || this.lastIndex === 0;
        if (!this.sticky && fromStart && long.has(String(input).length)) passes.push(`/${this.source.slice(0, 30)}/`);
        return original.call(this, input);
      },
    });
    try {
      run();
    } finally {
      Object.defineProperty(RegExp.prototype, 'exec', exec);
    }
    return passes;
  }

  it('two per text with the default detectors (the MRN pattern, the keyword starts), on prose and on the smtp-source body', async () => {
    const prose = (await parseMessage(readFileSync(new URL('../fixtures/prose-100k.eml', import.meta.url)))).texts;
    const bench = [{ source: 'text' as const, text: Array.from({ length: 1200 }, (_, i) => `${i % 10}${'X'.repeat(79)}`).join('\r\n') }];
    for (const texts of [prose, bench]) {
      const passes = wholeTextPasses(texts, () => runDetectors(texts, config));
      expect({ passes, perText: passes.length / texts.filter((t) => t.text.length > 1000).length }).toEqual({ passes, perText: 2 });
    }
  });

  it('counts what it should: a detector pass added over the whole text shows', () => {
    const texts = [{ source: 'text', text: 'x'.repeat(5000) }];
    expect(wholeTextPasses(texts, () => /\d{2}\/\d{2}/g.exec(texts[0]!.text)).length).toBe(1);
    expect(wholeTextPasses(texts, () => texts[0]!.text.replace(/y/g, ''))).toHaveLength(1);
  });
});
