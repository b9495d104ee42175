import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load.js';
import { parsePolicyText } from '../../src/policy/store.js';
import { runCli } from '../helpers/cli.js';

const problemsOf = (text: string): string[] => {
  try {
    parsePolicyText(text, 'policy.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

const rule = (detector: string) => `rules:\n  - { id: r, match: { detector: ${detector} }, action: { methods: [portal] } }\n`;

const CUSTOM = `detectors:
  custom: [{ name: trial-id, pattern: 'TRIAL-\\d{5}', category: trial }]
  keywords: [{ name: oncology, words: [biopsy, chemotherapy, tumour] }]
`;

/**
 * A rule's `detector:` names detectors as their hits are named. A name no detector
 * reports — a typo, another case, a custom detector the policy does not define — would
 * make the rule silently never match: the policy is refused instead, naming the key.
 */
describe('detector names in rules', () => {
  it('refuses names no detector reports, each at its key, listing the valid names', () => {
    const problems = problemsOf(rule('[SSN, "category:PHI", custom:no-such-detector, ssn]'));
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^rules\.0\.match\.detector\.0: unknown detector "SSN" \(did you mean "ssn"\?\): use one of ssn, card, mbi, dea, npi, icd10, dob, mrn, keywords:clinical, category:phi, category:pci$/);
    expect(problems[1]).toMatch(/^rules\.0\.match\.detector\.1: unknown detector "category:PHI" \(did you mean "category:phi"\?\)/);
    expect(problems[2]).toMatch(/^rules\.0\.match\.detector\.2: unknown detector "custom:no-such-detector": use one of /);
  });

  it('accepts the built-in detectors, mrn, the custom and keyword lists the policy defines, and their categories', () => {
    expect(problemsOf(CUSTOM + rule('[ssn, card, mbi, dea, npi, icd10, dob, mrn, custom:trial-id, keywords:oncology, category:phi, category:pci, category:trial]'))).toEqual([]);
    // One value instead of a list; a detector turned off keeps its name.
    expect(problemsOf(`detectors: { dob: { enabled: false } }\n${rule('dob')}`)).toEqual([]);
  });

  it('custom: and keywords: names must be defined in the same policy (a rules list on its own does not define them)', () => {
    expect(problemsOf(rule('custom:trial-id'))).toEqual([expect.stringMatching(/^rules\.0\.match\.detector\.0: unknown detector "custom:trial-id"/)]);
    expect(problemsOf(CUSTOM + rule('keywords:clinical'))).toEqual([expect.stringMatching(/^rules\.0\.match\.detector\.0: unknown detector "keywords:clinical": use one of .*keywords:oncology/)]);
    expect(problemsOf(CUSTOM + rule('category:custom'))).toEqual([expect.stringMatching(/unknown detector "category:custom"/)]);
  });

  it('`postern policy check` refuses such a policy (exit 2), naming the key', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'postern-detector-names-')), 'policy.yaml');
    writeFileSync(file, rule('[ssn, custom:no-such-detector]'));
    const r = await runCli(['policy', 'check', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/rules\.0\.match\.detector\.1: unknown detector "custom:no-such-detector"/);
  });
});
