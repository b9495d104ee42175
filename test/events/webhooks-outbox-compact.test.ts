import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox, type OutboxEvent, type PendingDelivery } from '../../src/events/webhooks-outbox.js';
import { eventually, tempDir } from './helpers.js';

/** Small files, so a few hundred events make many of them (the real size is 8 MB). */
const FILE_BYTES = 4096;
const options = { flushIntervalMs: 0, onError: () => undefined, fileBytes: FILE_BYTES };

const event = (id: string, i = 0): OutboxEvent => ({ t: 'event', id, hook: 'h1', event: 'delivered', at: 1_700_000_000_000 + i, payload: { id, data: { queueId: id, pad: 'x'.repeat(100) } } });
const outboxFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort();

/** Adds the event and resolves with its delivery once it is on disk. */
async function added(outbox: Outbox, e: OutboxEvent): Promise<PendingDelivery> {
  let p: PendingDelivery | undefined;
  expect(outbox.add(e, (d) => (p = d))).toBe(true);
  await outbox.flush();
  return p as PendingDelivery;
}

/** Healthy traffic: `n` events, each delivered (done line) once written. */
async function traffic(outbox: Outbox, prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const p = await added(outbox, event(`${prefix}${i}`, i));
    outbox.settle(p, { t: 'done', id: p.id, status: 200, at: Date.now() });
  }
  await outbox.flush();
}

describe('webhook outbox compaction', () => {
  const open: Outbox[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close().catch(() => undefined);
  });

  it('one delivery that keeps failing does not keep the files of all later traffic: it is copied forward, same id, and its old file deleted', async () => {
    const dir = tempDir();
    const { outbox } = await Outbox.open(dir, options);
    open.push(outbox);
    const stuck = await added(outbox, event('stuck'));
    await traffic(outbox, 'ok', 300); // ~100 KB: about twenty-five files' worth
    // Compaction follows the settle lines, beside the traffic: it ends with the newest file alone.
    await eventually(() => outboxFiles(dir).length === 1, 'the outbox down to its newest file', 5000).catch(() => undefined);
    expect(outboxFiles(dir)).toHaveLength(1);
    expect(stuck.pos.file).toBe(outboxFiles(dir)[0]);
    await outbox.close();

    // A restart finds it pending, once, with its id and content; it can still be settled.
    const reopened = await Outbox.open(dir, options);
    open.push(reopened.outbox);
    expect(reopened.pending.map((p) => p.id)).toEqual(['stuck']);
    expect(await reopened.outbox.read(reopened.pending[0] as PendingDelivery)).toEqual(event('stuck'));
  });

  it('a delivery moved while the outbox runs is read and settled where it is now, and then nothing is pending', async () => {
    const dir = tempDir();
    const { outbox } = await Outbox.open(dir, options);
    open.push(outbox);
    const stuck = await added(outbox, event('stuck'));
    const first = stuck.pos.file;
    await traffic(outbox, 'ok', 100);
    // The object the dispatcher holds follows the copy.
    await eventually(() => stuck.pos.file !== first && !outboxFiles(dir).includes(first), 'the first file compacted away', 5000).catch(() => undefined);
    expect(outboxFiles(dir)).not.toContain(first);
    expect(stuck.pos.file).not.toBe(first);
    expect(await outbox.read(stuck)).toEqual(event('stuck'));
    outbox.settle(stuck, { t: 'gave-up', id: 'stuck', reason: 'test', at: Date.now() });
    await traffic(outbox, 'last', 100);
    await eventually(() => outboxFiles(dir).length === 1, 'the outbox down to its newest file', 5000).catch(() => undefined);
    expect(outboxFiles(dir)).toHaveLength(1);
    await outbox.close();
    const reopened = await Outbox.open(dir, options);
    open.push(reopened.outbox);
    expect(reopened.pending).toEqual([]);
  });

  it('a crash between the copy and the deletion leaves the event line twice: it is pending once, and settled once settled', async () => {
    const dir = tempDir();
    const line = (o: object) => `${JSON.stringify(o)}\n`;
    // The old file with two events; the newer holds the copy of one, then the other's done line.
    writeFileSync(join(dir, '000001-2024-01-01.jsonl'), line(event('a')) + line(event('b')));
    writeFileSync(join(dir, '000002-2024-01-01.jsonl'), line(event('a')) + line({ t: 'done', id: 'b', status: 200, at: 1 }));
    const { outbox, pending } = await Outbox.open(dir, options);
    open.push(outbox);
    expect(pending.map((p) => [p.id, p.pos.file])).toEqual([['a', '000002-2024-01-01.jsonl']]);
    expect(outboxFiles(dir)).toEqual(['000002-2024-01-01.jsonl']); // nothing pending is left in the old one
    outbox.settle(pending[0] as PendingDelivery, { t: 'done', id: 'a', status: 200, at: 2 });
    await outbox.close();
    const reopened = await Outbox.open(dir, options);
    open.push(reopened.outbox);
    expect(reopened.pending).toEqual([]);
  });
});
