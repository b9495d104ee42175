import { describe, expect, it } from 'vitest';
import { MemoryBudget } from '../../src/deliver/memory-budget.js';

/** Whether a promise has settled by the time queued microtasks have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('MemoryBudget', () => {
  it('lets shares in while they fit, makes the next wait until one is given back', async () => {
    const b = new MemoryBudget(100);
    const first = await b.take(60);
    expect(b.heldBytes).toBe(60);
    expect(b.mustWait(50)).toBe(true);
    const second = b.take(50);
    expect(await settled(second)).toBe(false);
    expect(b.waitingCount).toBe(1);
    first();
    expect(await settled(second)).toBe(true);
    expect(b.heldBytes).toBe(50);
  });

  it('a share larger than the whole budget goes alone, once nothing else is held: delayed, never refused', async () => {
    const b = new MemoryBudget(100);
    const small = await b.take(10);
    const big = b.take(500);
    expect(await settled(big)).toBe(false);
    small();
    const releaseBig = await big;
    expect(b.heldBytes).toBe(500);
    const after = b.take(1);
    expect(await settled(after)).toBe(false);
    releaseBig();
    expect(await settled(after)).toBe(true);
  });

  it('first come, first served: small shares do not overtake a large one waiting before them', async () => {
    const b = new MemoryBudget(100);
    const a = await b.take(60);
    const large = b.take(90);
    const small = b.take(10);
    // 10 would fit beside the 60 held, but the 90 asked first.
    expect(await settled(small)).toBe(false);
    a();
    expect(await settled(large)).toBe(true);
    expect(await settled(small)).toBe(true);
    expect(b.heldBytes).toBe(100);
  });

  it('giving a share back twice gives it back once', async () => {
    const b = new MemoryBudget(100);
    const a = await b.take(40);
    const c = await b.take(40);
    a();
    a();
    expect(b.heldBytes).toBe(40);
    c();
    expect(b.heldBytes).toBe(0);
  });
});
