/**
 * Min-heap of (dueAt, id) with lazy deletion: an entry is stale when the index no longer
 * holds that id with the same dueAt. Keeps "what is due next" O(log n) for large queues.
 */
export class DueHeap {
  private items: { dueAt: number; id: string }[] = [];

  get size(): number {
    return this.items.length;
  }

  push(dueAt: number, id: string): void {
    const items = this.items;
    items.push({ dueAt, id });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((items[parent] as { dueAt: number }).dueAt <= dueAt) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  peek(): { dueAt: number; id: string } | undefined {
    return this.items[0];
  }

  pop(): { dueAt: number; id: string } | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < items.length && items[l]!.dueAt < items[smallest]!.dueAt) smallest = l;
        if (r < items.length && items[r]!.dueAt < items[smallest]!.dueAt) smallest = r;
        if (smallest === i) break;
        [items[i], items[smallest]] = [items[smallest]!, items[i]!];
        i = smallest;
      }
    }
    return top;
  }
}
