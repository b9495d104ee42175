import { BUILT_IN_DETECTORS } from '../inspect/detectors/index.js';
import type { DetectorsConfig } from '../inspect/detectors/config.js';

/** Where a rule names a detector that does not exist, and what to say about it. */
export interface DetectorNameProblem {
  rule: number;
  item: number;
  message: string;
}

/**
 * The detector names a rule's `detector:` may use with these detector settings: the
 * built-in detectors (mrn included), `custom:<name>` and `keywords:<name>` for the
 * lists defined in the same policy, and `category:<c>` for a category one of them
 * reports. Detectors that are turned off keep their names (the rule then never matches
 * by them, as asked).
 */
export function detectorNames(detectors: DetectorsConfig): string[] {
  const categories = new Set([...BUILT_IN_DETECTORS.map((d) => d.category), ...detectors.custom.map((c) => c.category), ...detectors.keywords.map((k) => k.category)]);
  return [
    ...BUILT_IN_DETECTORS.map((d) => d.name),
    ...detectors.custom.map((c) => `custom:${c.name}`),
    ...detectors.keywords.map((k) => `keywords:${k.name}`),
    ...[...categories].map((c) => `category:${c}`),
  ];
}

/**
 * Each name in the rules' `detector:` lists that no detector reports. Matching is exact
 * (hits are named as in detectorNames), so a name that is off by its case or a typo
 * would silently never match: refused instead, with the names that exist.
 */
export function unknownDetectorNames(rules: readonly { match: { detector?: string[] | undefined } }[], detectors: DetectorsConfig): DetectorNameProblem[] {
  const known = detectorNames(detectors);
  const valid = new Set(known);
  const problems: DetectorNameProblem[] = [];
  rules.forEach((rule, r) =>
    (rule.match.detector ?? []).forEach((name, i) => {
      if (valid.has(name)) return;
      const near = known.find((k) => k.toLowerCase() === name.toLowerCase());
      const hint = near ? ` (did you mean "${near}"?)` : '';
      problems.push({ rule: r, item: i, message: `unknown detector "${name}"${hint}: use one of ${known.join(', ')}` });
    }),
  );
  return problems;
}
