import { describe, expect, it } from 'vitest';
import { detectorsConfigSchema, runDetectors } from '../../src/inspect/detectors/index.js';
import * as checks from '../../src/inspect/detectors/checks.js';

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

  it('stays linear on hostile input (a generous bound: it catches exponential blow-up, not speed)', () => {
    const hostile = `${'1-'.repeat(200_000)}${'4'.repeat(100_000)}${'a.'.repeat(100_000)}`;
    const t0 = Date.now();
    scan(hostile, detectorsConfigSchema.parse({ maxScanBytes: 2_000_000 }));
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

/**
 * The detectors share passes over the text (digit runs, one alternation for codes) for
 * speed. This reference runs each pattern over the whole text on its own, as the
 * definitions read; on random texts built from near-miss fragments both must agree.
 */
describe('detectors: shared passes find exactly what separate passes find', () => {
  const MBI_A = '[AC-HJKMNP-RT-Y]';
  const MBI_N = '[AC-HJKMNP-RT-Y0-9]';
  const reference: Record<string, RegExp> = {
    ssnFormatted: /\b(\d{3})[- ](\d{2})[- ](\d{4})\b/g,
    bare9: /\b(\d{3})(\d{2})(\d{4})\b/g,
    card: /\b\d(?:[ -]?\d){12,18}\b/g,
    npi: /\b[12]\d{9}\b/g,
    mbi: new RegExp(`\\b[1-9]${MBI_A}${MBI_N}\\d-?${MBI_A}${MBI_N}\\d-?${MBI_A}${MBI_A}\\d\\d\\b`, 'g'),
    dea: /\b[ABCDEFGHJKLMPRSTUX][A-Z9]\d{7}\b/g,
    icd10: /\b[A-TV-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?\b/g,
  };
  const all = (re: RegExp, text: string) => [...text.matchAll(re)];
  const fragments = ['524-12-3456', '524 12 3456', '524123456', '4111 1111 1111 1111', '4111-1111-1111-1111', '5555555555554444', '1234567893', '1234567890', 'AB1234563', 'XB1234563', '1EG4-TE5-MK73', '1EG4TE5MK73', '1EG4-T95-MK73', 'E11.9', 'S72.001A', 'X12', '7', '42', '-', ' ', '  ', '.', 'SSN', 'NPI', 'provider', 'diagnosis', 'patient', 'XXXX', 'abc', '\r\n', '9', '0000'];
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const texts = Array.from({ length: 400 }, () => Array.from({ length: 3 + Math.floor(random() * 25) }, () => fragments[Math.floor(random() * fragments.length)]).join(''));

  it('counts of ssn, card, npi, mbi, dea, icd10 agree with whole-text passes on 400 random texts', () => {
    const cfg = detectorsConfigSchema.parse({ keywords: [], mrn: { enabled: false }, dob: { enabled: false } });
    for (const text of texts) {
      // Reference counts, with the same validity and context rules the detectors apply.
      const r = runDetectors([{ source: 'text', text }], cfg);
      const got = (d: string) => r.hits.find((h) => h.detector === d)?.count ?? 0;
      const distinct = (values: string[]) => new Set(values).size;
      const { ssnValid, luhnValid, cardPrefixKnown, npiValid, deaValid } = checks;
      const near = (i: number, len: number, ctx: RegExp, reach: number) => ctx.test(text.slice(Math.max(0, i - reach), i + len + reach));
      const ssn = [
        ...all(reference.ssnFormatted!, text).filter((m) => ssnValid(m[1]!, m[2]!, m[3]!)).map((m) => `${m[1]}${m[2]}${m[3]}`),
        ...all(reference.bare9!, text).filter((m) => ssnValid(m[1]!, m[2]!, m[3]!) && near(m.index, 9, /\b(?:ssn|social security)\b/i, 40)).map((m) => m[0]),
      ];
      const card = all(reference.card!, text).map((m) => m[0].replace(/[ -]/g, '')).filter((d) => d.length >= 13 && d.length <= 19 && cardPrefixKnown(d) && luhnValid(d));
      const npi = all(reference.npi!, text).filter((m) => npiValid(m[0]) && near(m.index, 10, /\b(?:npi|provider|prescriber|physician)\b/i, 60)).map((m) => m[0]);
      const mbi = all(reference.mbi!, text).map((m) => m[0].replace(/-/g, ''));
      const dea = all(reference.dea!, text).filter((m) => deaValid(m[0])).map((m) => m[0]);
      const icd = all(reference.icd10!, text).filter((m) => near(m.index, m[0].length, /\b(?:diagnos\w*|dx|icd(?:-?10)?|condition|patient|assessment|history of)\b/i, 80)).map((m) => m[0].toUpperCase());
      const expected = { ssn: distinct(ssn), card: distinct(card), npi: distinct(npi), mbi: distinct(mbi), dea: distinct(dea), icd10: distinct(icd) };
      expect({ text, counts: Object.fromEntries(Object.keys(expected).map((d) => [d, got(d)])) }).toEqual({ text, counts: expected });
    }
  });
});
