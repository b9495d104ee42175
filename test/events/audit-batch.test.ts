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
});
