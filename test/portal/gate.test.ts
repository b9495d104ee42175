import { describe, expect, it } from 'vitest';
import { BusyError, Gate } from '../../src/portal/web/gate.js';

describe('portal hashing gate', () => {
  it('runs at most its limit at once, hands a freed slot to the next waiting task, refuses beyond the waiting room', async () => {
    const gate = new Gate(1, 60_000, 1);
    const order: string[] = [];
    let releaseFirst = () => {};
    const first = gate.run(() => new Promise<void>((r) => (releaseFirst = r)).then(() => void order.push('first')));
    const second = gate.run(async () => void order.push('second'));
    await expect(gate.run(async () => void order.push('third'))).rejects.toBeInstanceOf(BusyError);
    expect(order).toEqual([]);
    releaseFirst();
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
    // Free again: a new task runs at once.
    await expect(gate.run(async () => 'fourth')).resolves.toBe('fourth');
  });

  it('a failing task frees its slot', async () => {
    const gate = new Gate(1, 60_000, 4);
    await expect(gate.run(() => Promise.reject(new Error('scrypt failed')))).rejects.toThrow('scrypt failed');
    await expect(gate.run(async () => 'next')).resolves.toBe('next');
  });
});
