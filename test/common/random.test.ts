import { describe, expect, it } from 'vitest';
import { secureRandomBytes } from '../../src/common/random.js';

describe('pooled secure random bytes', () => {
  it('never hands out the same bytes twice, across pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) seen.add(secureRandomBytes(12).toString('hex')); // > 3 pool refills
    expect(seen.size).toBe(5000);
  });

  it('returns a copy the caller may wipe, of the length asked, large requests too', () => {
    const key = secureRandomBytes(32);
    expect(key).toHaveLength(32);
    key.fill(0);
    expect(secureRandomBytes(32).equals(Buffer.alloc(32))).toBe(false);
    expect(secureRandomBytes(10_000)).toHaveLength(10_000);
  });
});
