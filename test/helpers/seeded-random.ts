/**
 * A deterministic generator of numbers in [0, 1) (a linear congruential one), so a test
 * that draws random input can be replayed from its seed when it fails.
 */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}
