import { describe, expect, it } from 'vitest';
import { workerCount } from '../../src/cluster/worker-count.js';

describe('workers: auto', () => {
  it('runs one process per core but one, and never none', () => {
    expect(workerCount('auto', 1)).toBe(1);
    expect(workerCount('auto', 2)).toBe(1);
    expect(workerCount('auto', 4)).toBe(3);
    expect(workerCount('auto', 16)).toBe(15);
  });

  it('a number is taken as it is', () => {
    expect(workerCount(1, 8)).toBe(1);
    expect(workerCount(2, 2)).toBe(2);
    expect(workerCount(6, 2)).toBe(6);
  });
});
