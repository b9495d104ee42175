import { z } from 'zod';
import { patternProblem, shippedPattern } from './user-pattern.js';

const pattern = z.string().max(500, 'patterns longer than 500 characters are refused');
const flags = z.string().regex(/^[imsu]*$/, 'flags: any of i, m, s, u').default('i');

/** A scanned pattern is checked with its own flags (see user-pattern.ts); the problem is put on `pattern`. */
function checkedPattern<T extends { pattern: string; flags: string }>(entry: T, ctx: z.RefinementCtx): void {
  const problem = patternProblem(entry.pattern, { flags: entry.flags, scanned: true });
  if (problem) ctx.addIssue({ code: 'custom', path: ['pattern'], message: problem });
}

/** The default MRN pattern: shipped, so it runs on V8 (see user-pattern.ts). */
const DEFAULT_MRN = { name: 'mrn', ...shippedPattern('\\bMRN[:#\\s]*\\d{6,10}\\b', 'i') };

const builtIn = (weight: number) => z.strictObject({ enabled: z.boolean().default(true), weight: z.number().nonnegative().default(weight) }).prefault({});

/**
 * Detector settings (the `detectors:` section of the policy). Weights turn counts into
 * a score; the policy compares the score with `phiThreshold`. Defaults: an SSN, a card
 * number or a Medicare id alone reach the default threshold of 5; a date of birth,
 * DEA number, NPI or ICD-10 code need company.
 */
export const detectorsConfigSchema = z.strictObject({
  /** Text scanned per message, all parts together. */
  maxScanBytes: z.number().int().positive().default(2 * 1024 * 1024),
  ssn: builtIn(5),
  card: builtIn(5),
  mbi: builtIn(5),
  dea: builtIn(3),
  npi: builtIn(2),
  icd10: builtIn(2),
  dob: builtIn(3),
  mrn: z
    .strictObject({
      enabled: z.boolean().default(true),
      weight: z.number().nonnegative().default(4),
      patterns: z.array(z.strictObject({ name: z.string(), pattern, flags }).superRefine(checkedPattern)).default([DEFAULT_MRN]),
    })
    .prefault({}),
  custom: z
    .array(z.strictObject({ name: z.string(), pattern, flags, category: z.string().default('custom'), weight: z.number().nonnegative().default(1), minCount: z.number().int().positive().default(1) }).superRefine(checkedPattern))
    .default([]),
  /** Word lists: a list fires when at least `threshold` different words of it appear. */
  keywords: z
    .array(z.strictObject({ name: z.string(), words: z.array(z.string().min(1)).min(1), category: z.string().default('phi'), weight: z.number().nonnegative().default(2), threshold: z.number().int().positive().default(3) }))
    .default([
      {
        name: 'clinical',
        words: ['diagnosis', 'prognosis', 'chemotherapy', 'radiotherapy', 'oncology', 'biopsy', 'HIV', 'hepatitis', 'psychiatric', 'prescription', 'lab results', 'pathology', 'discharge summary', 'medication', 'dosage', 'treatment plan', 'patient', 'MRI', 'CT scan', 'blood test'],
        category: 'phi',
        weight: 2,
        threshold: 3,
      },
    ]),
});

export type DetectorsConfig = z.output<typeof detectorsConfigSchema>;
