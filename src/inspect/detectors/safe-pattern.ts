import safeRegex from 'safe-regex2';

/**
 * Regular expressions from the configuration (MRN and custom detectors, rule header
 * matchers) run over every message, so one that can backtrack exponentially
 * ('(a+)+$': 0.6 s on 25 characters, twice as long per character more) would stall
 * the worker on a crafted message. safe-regex2 (fastify's checker) refuses patterns with
 * a quantified group that itself holds a quantifier, the shape of that blow-up. It is
 * a heuristic: it also refuses some harmless patterns ('(\d{3}-?){3}', to be written
 * out instead), and it does not catch overlapping alternatives ('(a|aa)+'); inspection
 * has a deadline besides (see inspector.ts).
 */
export function patternProblem(source: string, o: { flags?: string; scanned?: boolean } = {}): string | undefined {
  const flags = o.flags ?? '';
  let re: RegExp;
  try {
    re = new RegExp(source, flags);
  } catch (err) {
    return `invalid regular expression: ${(err as Error).message}`;
  }
  if (!safeRegex(re)) {
    return 'this pattern can take exponential time on some input (a repeated group holding a quantifier, or too many quantifiers); write the repetition out, e.g. \\d{3}-?\\d{3} instead of (\\d{3}-?){2}';
  }
  // A detector counts what its pattern finds: an empty match finds nothing, everywhere.
  if (o.scanned && re.test('')) return 'this pattern matches the empty string: it must match at least one character';
  return undefined;
}
