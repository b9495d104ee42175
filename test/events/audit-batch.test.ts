import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/events/audit-batch.js';
import { eventually } from './helpers.js';

describe('group commit', () => {
  it('items pushed together share one write; flush waits for them', async () => {
    const writes: number[][] = [];
    const g = new GroupCommit<number>(async (b) => void writes.push(b), { intervalMs: 1000, maxBatch: 100, maxPending: 1000, onError: () => undefined });
    for (let i = 0; i < 10; i++) g.push(i);
    expect(writes).toEqual([]); // nothing written synchronously: push never waits for the disk
    await g.flush();
    expect(writes).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
  });

  it('a full batch is written without waiting for the interval', async () => {
    const writes: number[][] = [];
    const g = new GroupCommit<number>(async (b) => void writes.push(b), { intervalMs: 60_000, maxBatch: 3, maxPending: 1000, onError: () => undefined });
    for (let i = 0; i < 3; i++) g.push(i);
    await eventually(() => writes.length === 1, 'the full batch');
    expect(writes[0]).toEqual([0, 1, 2]);
    await g.close();
  });

  it('a failed write keeps its items in order and retries them; a full buffer refuses instead of growing', async () => {
    let failing = true;
    const written: number[] = [];
    const errors: number[] = [];
    const g = new GroupCommit<number>(
      async (b) => {
        if (failing) throw new Error('EIO');
        written.push(...b);
      },
      { intervalMs: 5, maxBatch: 100, maxPending: 4, onError: (_e, n) => errors.push(n) },
    );
    for (let i = 0; i < 3; i++) expect(g.push(i)).toBe(true);
    await expect(g.flush()).rejects.toThrow('EIO');
    expect(g.push(3)).toBe(true);
    expect(g.push(4)).toBe(false); // four kept in memory: the fifth is refused, never blocks
    await eventually(() => errors.length >= 2, 'a retry');
    failing = false;
    await eventually(() => written.length === 4, 'the retried batch');
    expect(written).toEqual([0, 1, 2, 3]);
    expect(g.pending).toBe(0);
  });

  it('under a steady stream of items, a flush waits for those pushed before it only: it joins the batch being written or the next', async () => {
    const written: number[] = [];
    let writes = 0;
    const g = new GroupCommit<number>(
      async (b) => {
        await sleep(3);
        written.push(...b);
        writes++;
      },
      { intervalMs: 5, maxBatch: 1000, maxPending: 100_000, onError: () => undefined },
    );
    let n = 0;
    const pusher = setInterval(() => g.push(n++), 1);
    try {
      await eventually(() => writes >= 3, 'writes under way');
      for (let i = 0; i < 10; i++) {
        const before = { writes, pushed: n };
        await within(g.flush(), 2000, 'a flush under a steady stream');
        // The batch being written when it was called (its items may not be in it), then at most the next one.
        expect(writes - before.writes).toBeLessThanOrEqual(2);
        expect(written.slice(0, before.pushed)).toEqual([...Array(before.pushed).keys()]);
        await sleep(2);
      }
      // The queue never emptied meanwhile: items kept coming in.
      expect(g.pending).toBeGreaterThan(0);
    } finally {
      clearInterval(pusher);
    }
    await g.close();
    expect(written).toEqual([...Array(n).keys()]);
  });

  it('a flush is rejected only by a failed batch that holds some of its items', async () => {
    const gates: { resolve(): void; reject(err: Error): void }[] = [];
    const g = new GroupCommit<number>(
      () =>
        new Promise<void>((resolve, reject) => {
          gates.push({ resolve, reject });
        }),
      { intervalMs: 60_000, maxBatch: 100, maxPending: 1000, onError: () => undefined },
    );
    g.push(0);
    const first = g.flush();
    await eventually(() => gates.length === 1, 'the first batch being written');
    g.push(1);
    const second = g.flush(); // joins the next batch: one write at a time
    expect(gates.length).toBe(1);
    gates[0]!.resolve();
    await first;
    await eventually(() => gates.length === 2, 'the next batch, written at once for the waiting flush');
    gates[1]!.reject(new Error('EIO'));
    await expect(second).rejects.toThrow('EIO');
    expect(g.pending).toBe(1);
    // While failing, a flush that needs unwritten items is refused at once, without a write of its own.
    await expect(g.flush()).rejects.toThrow('EIO');
    expect(gates.length).toBe(2);
    // close() writes once more at once, even while failing (without it, the retry would in 5 s).
    const closing = g.close();
    await eventually(() => gates.length === 3, 'the last write on close');
    gates[2]!.resolve();
    await closing;
    expect(g.pending).toBe(0);
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Fails instead of hanging when `p` does not settle in time (a flush that never resolves). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
