import { describe, expect, it } from 'vitest';
import { globMatches } from '../../src/policy/match.js';

/** The obvious implementation: the glob as an anchored RegExp (backtracks on hostile input). */
const reference = (pattern: string, text: string) =>
  new RegExp(`^${pattern.toLowerCase().split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(text.toLowerCase());

describe('sender and recipient globs', () => {
  it('agree with the RegExp reference on random patterns and addresses', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = (chars: string, n: number) => Array.from({ length: n }, () => chars[Math.floor(random() * chars.length)]).join('');
    for (let i = 0; i < 3000; i++) {
      const pattern = pick('ab*@.A', 1 + Math.floor(random() * 8));
      const text = pick('abB@.', Math.floor(random() * 10));
      expect({ pattern, text, m: globMatches(pattern, text) }).toEqual({ pattern, text, m: reference(pattern, text) });
    }
    expect([globMatches('*@Partner.org', 'Dr.Who@partner.ORG'), globMatches('a.b@x', 'aXb@x'), globMatches('', ''), globMatches('*', '')]).toEqual([true, false, true, true]);
  });

  it('stay fast on an address made to make a RegExp backtrack (bound: catches blow-up, not speed)', () => {
    const t0 = Date.now();
    expect(globMatches(`${'*a'.repeat(12)}*b@x.example`, `${'a'.repeat(200)}@x.example`)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
