import { RE2JS } from 're2js';

/**
 * Regular expressions from the configuration (MRN and custom detectors, rule header
 * matchers) run over text a sender controls. On V8's backtracking engine one unlucky
 * pattern freezes the gateway: '(a|aa)+$' takes seconds on 40 characters, '.*.*.*='
 * 24 s on 500; no static checker catches them all. So these patterns run on RE2
 * (re2js, its pure-JavaScript port: no native build), whose time is linear in the
 * text. RE2 has no backreferences and no lookaround; a pattern using them is refused
 * when the policy is loaded, with the key named.
 *
 * Linear is not free: the cost per character grows with the size of the compiled
 * pattern (a 600-instruction automaton that keeps every state alive costs ~70 µs a
 * character to locate matches). Patterns above MAX_PROGRAM_SIZE instructions are
 * refused; the scan checks the inspection deadline between matches.
 */
export interface UserPattern {
  /** The pattern as written in the configuration. */
  readonly source: string;
  /** Whether it occurs anywhere in `text` (RE2's DFA: the fast path). */
  test(text: string): boolean;
  /** Each non-empty match, leftmost first, not overlapping. */
  matches(text: string): Iterable<string>;
}

/**
 * Room for a list of some forty words or a `.{0,200}` gap; refuses the automata whose
 * every-state-alive worst case runs to seconds per 100 KB.
 */
export const MAX_PROGRAM_SIZE = 500;

const FLAGS: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL, u: 0 };

class Re2Pattern implements UserPattern {
  constructor(
    readonly source: string,
    private readonly re: RE2JS,
  ) {}

  test(text: string): boolean {
    return this.re.test(text);
  }

  *matches(text: string): Iterable<string> {
    // Most texts hold no match: the DFA says so at a fraction of the cost of locating one.
    if (!this.re.test(text)) return;
    const m = this.re.matcher(text);
    while (m.find()) {
      const found = m.group();
      if (found) yield found;
    }
  }
}

/**
 * A pattern Postern ships (the default MRN pattern), read by a person for backtracking:
 * it stays on V8, fifty times faster than RE2 in JavaScript on text without a match.
 */
class ShippedPattern implements UserPattern {
  private readonly re: RegExp;
  constructor(
    readonly source: string,
    flags: string,
  ) {
    this.re = new RegExp(source, `g${flags}`);
  }

  test(text: string): boolean {
    this.re.lastIndex = 0;
    return this.re.test(text);
  }

  *matches(text: string): Iterable<string> {
    const re = this.re;
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (m[0] === '') re.lastIndex++;
      else yield m[0];
    }
  }
}

/** Shipped patterns by source and flags; the same pattern written in a configuration is the same pattern. */
const SHIPPED = new Map<string, string>();

export function shippedPattern(source: string, flags: string): { pattern: string; flags: string } {
  SHIPPED.set(`${flags}/${source}`, source);
  return { pattern: source, flags };
}

/** The compiled form of a pattern that passed patternProblem (shipped ones on V8, the rest on RE2). */
export function compiledPattern(source: string, flags = ''): UserPattern {
  if (SHIPPED.has(`${flags}/${source}`)) return new ShippedPattern(source, flags);
  const p = compileUserPattern(source, flags);
  if (typeof p === 'string') throw new Error(`pattern ${source}: ${p}`);
  return p;
}

/** Compiles a configured pattern (flags from "imsu"), or says why it cannot run. */
export function compileUserPattern(source: string, flags = ''): UserPattern | string {
  try {
    new RegExp(source, flags);
  } catch (err) {
    return `invalid regular expression: ${(err as Error).message}`;
  }
  let re: RE2JS;
  try {
    // translateRegExp accepts JavaScript spellings RE2 lacks (\u00e9, \cA).
    re = RE2JS.compile(RE2JS.translateRegExp(source), [...flags].reduce((f, c) => f | (FLAGS[c] ?? 0), 0));
  } catch (err) {
    return `configured patterns run on RE2, which guarantees time linear in the text and has no backreferences (\\1, \\k<name>) or lookaround ((?=, (?!, (?<=, (?<!): ${(err as Error).message}`;
  }
  const size = re.programSize();
  if (size > MAX_PROGRAM_SIZE) return `this pattern compiles to ${size} instructions, more than ${MAX_PROGRAM_SIZE}: matching costs grow with that size; split it into several patterns or shorten counted repeats like {1,200}`;
  return new Re2Pattern(source, re);
}

/** Why a configured pattern is refused, or undefined; `scanned`: it counts what it finds, so it must not match the empty string. */
export function patternProblem(source: string, o: { flags?: string; scanned?: boolean } = {}): string | undefined {
  const p = compileUserPattern(source, o.flags ?? '');
  if (typeof p === 'string') return p;
  if (o.scanned && p.test('')) return 'this pattern matches the empty string: it must match at least one character';
  return undefined;
}
