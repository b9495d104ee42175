import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { IncomingEnvelope, QueueBackend } from '../../src/queue/backend.js';
import { LeaseLostError } from '../../src/queue/errors.js';
import { newQueueId } from '../../src/queue/ids.js';
import { comparePositions, type ListPosition } from '../../src/queue/list-page.js';
import { seededRandom } from '../helpers/seeded-random.js';

export interface BackendHarness {
  backend: QueueBackend;
  /** Simulates a restart: closes (without cleanup) and opens a fresh instance on the same storage. */
  restart(): Promise<QueueBackend>;
  cleanup(): Promise<void>;
}

function incoming(overrides: Partial<IncomingEnvelope> = {}): IncomingEnvelope {
  return {
    id: newQueueId(),
    receivedAt: Date.now(),
    mailFrom: 'sender@client.test',
    rcptTo: ['a@dest.test', 'b@other.test'],
    client: { ip: '127.0.0.1', helo: 'client.test', sessionId: 's1' },
    bodyType: '7bit',
    smtpUtf8: false,
    ...overrides,
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function store(q: QueueBackend, body: Buffer, overrides: Partial<IncomingEnvelope> = {}) {
  const w = await q.receive(incoming(overrides));
  // Several writes, including one larger than any internal batch.
  const third = Math.floor(body.length / 3);
  await w.write(body.subarray(0, third));
  await w.write(body.subarray(third, 2 * third));
  await w.write(body.subarray(2 * third));
  return w.commit();
}

/**
 * The contract every QueueBackend keeps (fs spool now, Redis later). Each backend's
 * test file calls this with a harness that opens it on fresh storage.
 */
export function queueConformance(name: string, open: () => Promise<BackendHarness>): void {
  describe(`QueueBackend conformance: ${name}`, () => {
    let h: BackendHarness | undefined;
    afterEach(async () => {
      await h?.cleanup();
      h = undefined;
    });
    const start = async () => (h = await open());

    it('commits a message: body byte-exact, envelope with size, all recipients pending and due', async () => {
      const { backend: q } = await start();
      const body = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), Buffer.alloc(300_000, 0x61), Buffer.from([0xc3, 0xa9, 0x0d, 0x0a])]);
      const env = await store(q, body);
      expect(env.size).toBe(body.length);
      expect((await readAll(await q.openBody(env.id))).equals(body)).toBe(true);
      const got = await q.get(env.id);
      expect(got?.envelope).toMatchObject({ id: env.id, mailFrom: 'sender@client.test', rcptTo: ['a@dest.test', 'b@other.test'], size: body.length });
      expect(got?.state.recipients.map((r) => [r.rcpt, r.status, r.attempts])).toEqual([
        ['a@dest.test', 'pending', 0],
        ['b@other.test', 'pending', 0],
      ]);
      expect(q.stats().depth).toBe(1);
    });

    it('shows nothing of a message until commit, and nothing after abort', async () => {
      const { backend: q } = await start();
      const w = await q.receive(incoming());
      await w.write(Buffer.from('Subject: half\r\n\r\n'));
      expect(await q.list()).toEqual([]);
      expect(await q.lease(Date.now() + 1000, 10)).toEqual([]);
      await w.abort();
      await w.abort(); // idempotent
      expect(await q.list()).toEqual([]);
      const q2 = await h!.restart();
      expect(await q2.list()).toEqual([]);
    });

    it('leases each due message to one caller at a time', async () => {
      const { backend: q } = await start();
      const a = await store(q, Buffer.from('a\r\n'));
      const b = await store(q, Buffer.from('b\r\n'));
      const first = await q.lease(Date.now(), 1);
      expect(first).toHaveLength(1);
      const second = await q.lease(Date.now(), 10);
      expect(second.map((m) => m.envelope.id)).toEqual([a.id, b.id].filter((id) => id !== first[0]!.envelope.id));
      expect(await q.lease(Date.now(), 10)).toEqual([]);
      expect(q.stats().leased).toBe(2);
      await q.release(first[0]!.envelope.id);
      expect((await q.lease(Date.now(), 10)).map((m) => m.envelope.id)).toEqual([first[0]!.envelope.id]);
    });

    it('refuses a settle made with a lease that is no longer the current one, and changes nothing', async () => {
      const { backend: q } = await start();
      const env = await store(q, Buffer.from('x\r\n'));
      const [first] = await q.lease(Date.now(), 1);
      expect(first?.lease, 'a leased message carries its lease').toBeDefined();
      await q.release(env.id, first!.lease);
      const [second] = await q.lease(Date.now(), 1);
      expect(second?.lease).toBeDefined();
      expect(second!.lease).not.toBe(first!.lease);
      // The first attempt's lease is over: what it would write is refused, its release does nothing.
      for (const r of first!.state.recipients) r.status = 'delivered';
      await expect(q.save(env.id, first!.state, first!.lease)).rejects.toBeInstanceOf(LeaseLostError);
      await expect(q.remove(env.id, first!.lease)).rejects.toBeInstanceOf(LeaseLostError);
      await q.release(env.id, first!.lease);
      expect(await q.lease(Date.now(), 10)).toEqual([]);
      expect((await q.get(env.id))?.state.recipients.map((r) => r.status)).toEqual(['pending', 'pending']);
      // The current lease settles.
      const later = Date.now() + 60_000;
      second!.state.recipients[0]!.status = 'delivered';
      second!.state.recipients[1]!.nextAttemptAt = later;
      await q.save(env.id, second!.state, second!.lease);
      expect((await q.get(env.id))?.state.recipients.map((r) => r.status)).toEqual(['delivered', 'pending']);
      expect(q.nextDueAt()).toBe(later);
      // And once settled, that lease is over too.
      await expect(q.save(env.id, second!.state, second!.lease)).rejects.toBeInstanceOf(LeaseLostError);
    });

    it('saves recipient progress durably and schedules the next attempt', async () => {
      const { backend: q } = await start();
      const env = await store(q, Buffer.from('x\r\n'));
      const [m] = await q.lease(Date.now(), 1);
      const later = Date.now() + 60_000;
      m!.state.recipients[0]!.status = 'delivered';
      m!.state.recipients[1]!.attempts = 1;
      m!.state.recipients[1]!.nextAttemptAt = later;
      m!.state.recipients[1]!.lastResponse = '451 4.3.0 later';
      await q.save(env.id, m!.state);
      expect(await q.lease(Date.now(), 10)).toEqual([]);
      expect(q.nextDueAt()).toBe(later);
      const q2 = await h!.restart();
      const again = await q2.get(env.id);
      expect(again?.state.recipients.map((r) => r.status)).toEqual(['delivered', 'pending']);
      expect(again?.state.recipients[1]?.lastResponse).toBe('451 4.3.0 later');
      expect(await q2.lease(Date.now(), 10)).toEqual([]);
      expect((await q2.lease(later, 10)).map((x) => x.envelope.id)).toEqual([env.id]);
    });

    it('removes a message whose recipients are all final', async () => {
      const { backend: q } = await start();
      const env = await store(q, Buffer.from('x\r\n'));
      const [m] = await q.lease(Date.now(), 1);
      for (const r of m!.state.recipients) r.status = 'delivered';
      await q.save(env.id, m!.state);
      expect(await q.get(env.id)).toBeUndefined();
      expect(q.stats().depth).toBe(0);
      const keep = await store(q, Buffer.from('y\r\n'));
      await q.remove(keep.id);
      await expect(q.openBody(keep.id)).rejects.toThrow();
      expect(await (await h!.restart()).list()).toEqual([]);
    });

    it('recovers committed messages after a restart, and only those', async () => {
      const { backend: q } = await start();
      const kept = await store(q, Buffer.from('kept\r\n'));
      const w = await q.receive(incoming());
      await w.write(Buffer.from('never committed\r\n'));
      const q2 = await h!.restart();
      const all = await q2.list();
      expect(all.map((m) => m.envelope.id)).toEqual([kept.id]);
      expect((await readAll(await q2.openBody(kept.id))).toString()).toBe('kept\r\n');
      expect((await q2.lease(Date.now(), 10)).map((m) => m.envelope.id)).toEqual([kept.id]);
    });

    it('takes many concurrent commits without losing or mixing any', async () => {
      const { backend: q } = await start();
      const envs = await Promise.all(Array.from({ length: 60 }, (_, i) => store(q, Buffer.from(`message ${i}\r\n`.repeat(i + 1)))));
      expect(new Set(envs.map((e) => e.id)).size).toBe(60);
      for (const [i, e] of envs.entries()) expect((await readAll(await q.openBody(e.id))).toString()).toBe(`message ${i}\r\n`.repeat(i + 1));
      expect(q.stats().depth).toBe(60);
    });

    it('wakes the scheduler on commit and release', async () => {
      const { backend: q } = await start();
      let wakes = 0;
      q.onWake(() => wakes++);
      const env = await store(q, Buffer.from('x\r\n'));
      expect(wakes).toBeGreaterThanOrEqual(1);
      const before = wakes;
      await q.lease(Date.now(), 1);
      await q.release(env.id);
      expect(wakes).toBeGreaterThan(before);
    });

    it('keeps an empty body and a body written in many small chunks byte-exact', async () => {
      const { backend: q } = await start();
      // A DATA phase that delivered no bytes: commit without a single write.
      const emptyWriter = await q.receive(incoming());
      const empty = await emptyWriter.commit();
      expect(empty.size).toBe(0);
      expect((await readAll(await q.openBody(empty.id))).length).toBe(0);
      const body = Buffer.from(Array.from({ length: 1_200_000 }, (_, i) => (i * 31) % 256));
      const w = await q.receive(incoming());
      for (let i = 0; i < body.length; i += 1000) await w.write(body.subarray(i, i + 1000));
      const env = await w.commit();
      expect(env.size).toBe(body.length);
      const q2 = await h!.restart();
      expect((await readAll(await q2.openBody(env.id))).equals(body)).toBe(true);
      expect((await q2.get(empty.id))?.envelope.size).toBe(0);
    });

    it('records whether the stored body has a byte above 0x7F (bodyBits), however late it comes, and keeps it over a restart', async () => {
      const { backend: q } = await start();
      const ascii = (n: number) => Buffer.alloc(n, 0x61);
      const e9 = Buffer.from([0xc3, 0xa9]);
      // 600 KB is written in thirds (store): the 8-bit byte of "late" comes after the first
      // 400 KB, when a large body is on its way to storage already (the fs spool's own file).
      const bodies = {
        small7: ascii(100),
        small8: Buffer.concat([ascii(50), e9, ascii(50)]),
        large7: ascii(600_000),
        early8: Buffer.concat([e9, ascii(600_000)]),
        late8: Buffer.concat([ascii(600_000), e9]),
      };
      const expected = { small7: '7bit', small8: '8bit', large7: '7bit', early8: '8bit', late8: '8bit' };
      const ids: Record<string, string> = {};
      for (const [name, body] of Object.entries(bodies)) {
        const env = await store(q, body, { bodyType: '8bitmime' });
        expect([name, env.bodyBits]).toEqual([name, expected[name as keyof typeof expected]]);
        ids[name] = env.id;
      }
      const q2 = await h!.restart();
      for (const [name, body] of Object.entries(bodies)) {
        const got = await q2.get(ids[name] as string);
        expect([name, got?.envelope.bodyBits, got?.envelope.bodyType, got?.envelope.size]).toEqual([name, expected[name as keyof typeof expected], '8bitmime', body.length]);
        expect((await readAll(await q2.openBody(ids[name] as string))).equals(body)).toBe(true);
      }
    });

    it('reports the earliest due time of messages not leased', async () => {
      const { backend: q } = await start();
      expect(q.nextDueAt()).toBeUndefined();
      const env = await store(q, Buffer.from('x\r\n'), { receivedAt: 1_700_000_000_000 });
      expect(q.nextDueAt()).toBe(env.receivedAt);
      const [m] = await q.lease(Date.now(), 1);
      expect(q.nextDueAt()).toBeUndefined();
      await q.release(m!.envelope.id);
      expect(q.nextDueAt()).toBe(env.receivedAt);
      await q.release(m!.envelope.id); // not leased any more: nothing happens
      expect((await q.lease(Date.now(), 10)).map((x) => x.envelope.id)).toEqual([env.id]);
    });

    it('reports queue depth and the oldest message', async () => {
      const { backend: q } = await start();
      await store(q, Buffer.from('x\r\n'), { receivedAt: 1_700_000_000_000 });
      await store(q, Buffer.from('y\r\n'), { receivedAt: 1_700_000_500_000 });
      expect(q.stats()).toMatchObject({ depth: 2, leased: 0, oldestReceivedAt: 1_700_000_000_000 });
    });

    it('lists a page at a time, oldest first by (receivedAt, id), with where the next page starts and the total', async () => {
      const { backend: q } = await start();
      const base = 1_700_000_000_000;
      // Committed out of listing order; three share one millisecond (then the id decides).
      const envs = [];
      for (const t of [base + 5, base + 1, base + 3, base + 3, base + 3, base, base + 9]) envs.push(await store(q, Buffer.from('x\r\n'), { receivedAt: t }));
      const expected = envs.map((e) => ({ receivedAt: e.receivedAt, id: e.id })).sort(comparePositions).map((p) => p.id);
      // Being delivered does not hide a message from the listing.
      await q.lease(Date.now(), 2);
      const pages: string[][] = [];
      let after: ListPosition | undefined;
      do {
        const page = await q.listPage(after, 3);
        expect(page.total).toBe(7);
        pages.push(page.messages.map((m) => m.envelope.id));
        after = page.next;
      } while (after && pages.length < 10);
      expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
      expect(pages.flat()).toEqual(expected);
      // A page that ends exactly at the end of the queue says so: no empty page after it.
      const whole = await q.listPage(undefined, 7);
      expect(whole.messages.map((m) => m.envelope.id)).toEqual(expected);
      expect(whole.next).toBeUndefined();
      // The position need not be queued any more: the page goes on after it.
      const gone = envs.find((e) => e.id === expected[2])!;
      await q.remove(gone.id);
      const afterGone = await q.listPage({ receivedAt: gone.receivedAt, id: gone.id }, 2);
      expect(afterGone.messages.map((m) => m.envelope.id)).toEqual(expected.slice(3, 5));
      expect(afterGone.total).toBe(6);
      expect((await q.listPage(undefined, 10)).messages[0]?.state.recipients.map((r) => r.rcpt)).toEqual(['a@dest.test', 'b@other.test']);
    });

    it('a walk through the pages lists each message queued throughout exactly once, while others arrive and leave', async () => {
      const { backend: q } = await start();
      const random = seededRandom(20_260_523);
      const base = 1_700_000_000_000;
      const queued = new Map<string, ListPosition>();
      const add = async (receivedAt: number) => {
        const e = await store(q, Buffer.from('x\r\n'), { receivedAt });
        queued.set(e.id, { receivedAt, id: e.id });
        return e.id;
      };
      // Three messages a millisecond, committed in an order unrelated to it.
      for (let i = 0; i < 60; i++) await add(base + ((i * 7) % 20) * 10);
      const throughout = new Set(queued.keys());
      const addedAfterPosition = new Set<string>();
      const seen: string[] = [];
      let after: ListPosition | undefined;
      for (let pages = 0; pages < 100; pages++) {
        const page = await q.listPage(after, 7);
        for (const m of page.messages) {
          expect(queued.has(m.envelope.id), `${m.envelope.id} listed after its removal`).toBe(true);
          seen.push(m.envelope.id);
        }
        if (!page.next) break;
        after = page.next;
        // Between pages: two messages leave (listed already or not), one arrives that sorts
        // before the position (a clock step back, a message moved in from another shard),
        // one after it.
        for (let k = 0; k < 2; k++) {
          const ids = [...queued.keys()];
          const id = ids[Math.floor(random() * ids.length)] as string;
          await q.remove(id);
          queued.delete(id);
          throughout.delete(id);
        }
        await add(after.receivedAt - 1);
        addedAfterPosition.add(await add(base + 1000 + pages));
      }
      expect(seen.length, 'no message listed twice').toBe(new Set(seen).size);
      const seenSet = new Set(seen);
      expect([...throughout].filter((id) => !seenSet.has(id)), 'queued throughout but never listed').toEqual([]);
      expect([...addedAfterPosition].filter((id) => queued.has(id) && !seenSet.has(id)), 'arrived after the position, still queued, never listed').toEqual([]);
      expect(throughout.size).toBeGreaterThan(30);
    });

    it('claims one message by id for an admin change, unless someone holds it', async () => {
      const { backend: q } = await start();
      expect(q.claim, 'every backend supports admin changes').toBeDefined();
      const later = Date.now() + 3_600_000;
      const a = await store(q, Buffer.from('a\r\n'));
      const b = await store(q, Buffer.from('b\r\n'));
      const [leased] = await q.lease(Date.now(), 1);
      const other = leased!.envelope.id === a.id ? b : a;
      expect(await q.claim!(leased!.envelope.id)).toBeUndefined(); // a delivery holds it
      expect(await q.claim!('0000000000000000NOPE')).toBeUndefined();
      const claimed = await q.claim!(other.id);
      expect(claimed?.envelope.id).toBe(other.id);
      expect(await q.claim!(other.id)).toBeUndefined(); // claimed once
      expect(await q.lease(Date.now(), 10)).toEqual([]); // neither is handed out
      // "Retry now" of a message whose next attempt is later: saved due now, leased again.
      const state = claimed!.state;
      for (const r of state.recipients) r.nextAttemptAt = later;
      await q.save(other.id, state);
      const again = await q.claim!(other.id);
      for (const r of again!.state.recipients) r.nextAttemptAt = Date.now();
      await q.save(other.id, again!.state);
      expect((await q.lease(Date.now(), 10)).map((m) => m.envelope.id)).toEqual([other.id]);
    });
  });
}
