import { describe, expect, it } from 'vitest';
import { DueHeap } from '../../src/queue/fs/due-heap.js';
import { seededRandom } from '../helpers/seeded-random.js';

function drain(heap: DueHeap): { dueAt: number; id: string }[] {
  const out: { dueAt: number; id: string }[] = [];
  for (let e = heap.pop(); e; e = heap.pop()) out.push(e);
  return out;
}

describe('DueHeap', () => {
  it('is empty at first', () => {
    const heap = new DueHeap();
    expect(heap.size).toBe(0);
    expect(heap.peek()).toBeUndefined();
    expect(heap.pop()).toBeUndefined();
    expect(heap.size).toBe(0);
  });

  it('one entry', () => {
    const heap = new DueHeap();
    heap.push(5, 'a');
    expect(heap.size).toBe(1);
    expect(heap.peek()).toEqual({ dueAt: 5, id: 'a' });
    expect(heap.pop()).toEqual({ dueAt: 5, id: 'a' });
    expect(heap.size).toBe(0);
    expect(heap.pop()).toBeUndefined();
  });

  it('peek shows the earliest without removing it', () => {
    const heap = new DueHeap();
    for (const [t, id] of [[30, 'c'], [10, 'a'], [20, 'b']] as const) heap.push(t, id);
    expect(heap.peek()).toEqual({ dueAt: 10, id: 'a' });
    expect(heap.size).toBe(3);
    expect(heap.pop()?.id).toBe('a');
    expect(heap.peek()).toEqual({ dueAt: 20, id: 'b' });
  });

  it('pops ascending for ascending, descending and equal inputs', () => {
    for (const order of [
      [1, 2, 3, 4, 5, 6, 7, 8],
      [8, 7, 6, 5, 4, 3, 2, 1],
      [4, 4, 4, 4],
      [2, 1, 2, 1, 2, 1],
    ]) {
      const heap = new DueHeap();
      order.forEach((t, i) => heap.push(t, `id${i}`));
      expect(drain(heap).map((e) => e.dueAt)).toEqual([...order].sort((a, b) => a - b));
    }
  });

  it('random inputs pop in the order of a sorted reference', () => {
    const rand = seededRandom(42);
    for (let trial = 0; trial < 200; trial++) {
      const n = Math.floor(rand() * 300);
      const range = trial % 3 === 0 ? 10 : 1e9; // many ties in some trials
      const heap = new DueHeap();
      const ref: { dueAt: number; id: string }[] = [];
      for (let i = 0; i < n; i++) {
        const e = { dueAt: Math.floor(rand() * range), id: `m${trial}-${i}` };
        heap.push(e.dueAt, e.id);
        ref.push(e);
      }
      expect(heap.size).toBe(n);
      const out = drain(heap);
      expect(out.map((e) => e.dueAt)).toEqual(ref.map((e) => e.dueAt).sort((a, b) => a - b));
      // Nothing lost, nothing duplicated, each id kept with its own dueAt.
      const key = (e: { dueAt: number; id: string }) => `${e.id}@${e.dueAt}`;
      expect(out.map(key).sort()).toEqual(ref.map(key).sort());
      expect(heap.size).toBe(0);
    }
  });

  it('interleaved pushes and pops always pop the current minimum', () => {
    const rand = seededRandom(7);
    const heap = new DueHeap();
    const ref: number[] = [];
    for (let step = 0; step < 20_000; step++) {
      if (rand() < 0.55 || ref.length === 0) {
        const t = Math.floor(rand() * 1e6);
        heap.push(t, `x${step}`);
        ref.push(t);
      } else {
        const min = Math.min(...ref);
        ref.splice(ref.indexOf(min), 1);
        expect(heap.pop()?.dueAt).toBe(min);
      }
      expect(heap.size).toBe(ref.length);
      if (ref.length) expect(heap.peek()?.dueAt).toBe(Math.min(...ref));
    }
  });

  it('keeps duplicate entries for one id (stale ones are the caller\'s to skip)', () => {
    const heap = new DueHeap();
    heap.push(100, 'a');
    heap.push(50, 'a');
    heap.push(75, 'b');
    expect(drain(heap)).toEqual([
      { dueAt: 50, id: 'a' },
      { dueAt: 75, id: 'b' },
      { dueAt: 100, id: 'a' },
    ]);
  });

  it('handles negative, fractional and huge due times', () => {
    const heap = new DueHeap();
    for (const t of [Number.MAX_SAFE_INTEGER, -5, 0.5, 0, 1e15, -1e15]) heap.push(t, String(t));
    expect(drain(heap).map((e) => e.dueAt)).toEqual([-1e15, -5, 0, 0.5, 1e15, Number.MAX_SAFE_INTEGER]);
  });
});
