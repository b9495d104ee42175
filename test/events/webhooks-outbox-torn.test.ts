import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Outbox, type OutboxEvent, type PendingDelivery } from '../../src/events/webhooks-outbox.js';
import { eventually, tempDir } from './helpers.js';

const event = (id: string): OutboxEvent => ({ t: 'event', id, hook: 'h1', event: 'delivered', at: Date.now(), payload: { id, data: { queueId: id } } });

/** The FileHandle class of node:fs/promises, whose methods the outbox's segment files call. */
async function fileHandlePrototype(): Promise<Record<string, unknown>> {
  const fh = await open(process.execPath, 'r');
  await fh.close();
  return Object.getPrototypeOf(fh) as Record<string, unknown>;
}

/**
 * A batch whose fdatasync fails is cut off again (truncate) before it is written again.
 * When that truncate failed too, the next write (the file is opened for appending) landed
 * behind the torn batch while its positions were counted from the last good line: every
 * delivery written after it read back as damaged, and was given up unsent.
 */
describe('the file outbox after a write whose cut-off failed', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('nothing is written behind a torn batch: later events read back whole, and a restart finds each event once', async () => {
    const dir = tempDir();
    const errors: string[] = [];
    const { outbox } = await Outbox.open(dir, { flushIntervalMs: 0, onError: (err) => errors.push(err.message) });
    const durable = new Map<string, PendingDelivery>();
    const add = (id: string) => expect(outbox.add(event(id), (p) => durable.set(p.id, p))).toBe(true);
    add('e1');
    await outbox.flush();

    const proto = await fileHandlePrototype();
    const eio = (call: string) => Object.assign(new Error(`EIO: i/o error, ${call}`), { code: 'EIO' });
    vi.spyOn(proto as { datasync(): Promise<void> }, 'datasync').mockRejectedValueOnce(eio('fdatasync'));
    // The cut-off fails once; the write queue retries the batch right after (interval 0).
    vi.spyOn(proto as { truncate(len?: number): Promise<void> }, 'truncate').mockRejectedValueOnce(eio('ftruncate'));
    add('e2');
    await eventually(() => durable.has('e2'), 'e2 written after the failed write');
    expect(errors).toEqual(['EIO: i/o error, fdatasync']);
    add('e3');
    await outbox.flush();

    for (const id of ['e1', 'e2', 'e3']) expect((await outbox.read(durable.get(id) as PendingDelivery)).id).toBe(id);
    await outbox.close();

    const files = (await readdir(dir)).filter((f) => f.endsWith('.jsonl'));
    const lines = (await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).join('').split('\n').filter(Boolean);
    expect(lines.map((l) => (JSON.parse(l) as OutboxEvent).id)).toEqual(['e1', 'e2', 'e3']);
    const reopened = await Outbox.open(dir, { flushIntervalMs: 0, onError: () => undefined });
    expect(reopened.pending.map((p) => p.id).sort()).toEqual(['e1', 'e2', 'e3']);
    for (const p of reopened.pending) expect((await reopened.outbox.read(p)).id).toBe(p.id);
    await reopened.outbox.close();
  });
});
