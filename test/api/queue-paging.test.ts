import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalQueueOps } from '../../src/api/queue-ops.js';
import type { AdminSources } from '../../src/api/sources.js';
import { startAdminListener, type AdminListener } from '../../src/api/start.js';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import type { IncomingEnvelope, QueueBackend } from '../../src/queue/backend.js';
import { FsSpool } from '../../src/queue/fs/spool.js';
import { newQueueId } from '../../src/queue/ids.js';
import { comparePositions, type ListPosition } from '../../src/queue/list-page.js';
import { testConfigInput } from '../helpers/gateway.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, openTestQueue, testPrefix } from '../queue/redis-harness.js';
import { adminConfig, call, KEYS } from './admin-helpers.js';

const redisUp = await devRedisAvailable();

/** Queued at the start; the issue was an answer of all of them at once (200,000 in production). */
const N = 5000;
const BASE = 1_700_000_000_000;

interface Entry {
  id: string;
  receivedAt: string;
  recipients: { rcpt: string }[];
}

function incoming(receivedAt: number): IncomingEnvelope {
  return {
    id: newQueueId(receivedAt),
    receivedAt,
    mailFrom: 'sender@client.test',
    rcptTo: ['r@refusing.test'],
    client: { ip: '127.0.0.1', helo: 'client.test', sessionId: 's' },
    bodyType: '7bit',
    smtpUtf8: false,
  };
}

/** Commits a message straight into the backend (250 at a time, so the fs spool's group commit carries them). */
async function enqueue(q: QueueBackend, times: number[]): Promise<ListPosition[]> {
  const out: ListPosition[] = [];
  for (let i = 0; i < times.length; i += 250) {
    const batch = await Promise.all(
      times.slice(i, i + 250).map(async (t) => {
        const w = await q.receive(incoming(t));
        await w.write(Buffer.from('Subject: waiting\r\n\r\nfor a next hop that refuses\r\n'));
        return w.commit();
      }),
    );
    out.push(...batch.map((e) => ({ receivedAt: e.receivedAt, id: e.id })));
  }
  return out;
}

interface Walk {
  ids: string[];
  sizes: number[];
  totals: number[];
}

/** Follows X-Postern-Next-Cursor from the first page to the last; `between` runs after each page that has a next one. */
async function walk(url: string, limit: number | undefined, between?: (nextCursor: string) => Promise<void>): Promise<Walk> {
  const out: Walk = { ids: [], sizes: [], totals: [] };
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams();
    if (limit !== undefined) q.set('limit', String(limit));
    if (cursor) q.set('cursor', cursor);
    const r = await call(`${url}/api/v1/queue?${q}`, { key: KEYS.ro });
    expect(r.status, r.text).toBe(200);
    const entries = r.body as Entry[];
    out.ids.push(...entries.map((e) => e.id));
    out.sizes.push(entries.length);
    out.totals.push(Number(r.headers.get('x-postern-total')));
    cursor = r.headers.get('x-postern-next-cursor');
    if (cursor && between) await between(cursor);
  } while (cursor && out.sizes.length < 1000);
  return out;
}

/**
 * GET /api/v1/queue over a real admin listener on each queue backend, filled directly
 * (5,000 messages, three to a millisecond) as a gateway whose next hop refuses would
 * hold them. No delivery worker runs: nothing but the test changes the queue.
 */
function pagingSuite(name: string, open: () => Promise<{ queue: QueueBackend; shared: boolean; close(): Promise<void> }>, skip = false): void {
  describe.skipIf(skip)(`GET /api/v1/queue pages: ${name}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-queue-paging-'));
    let backend: Awaited<ReturnType<typeof open>>;
    let admin: AdminListener;
    let url: string;
    let order: string[];

    beforeAll(async () => {
      backend = await open();
      const config = validateConfig(testConfigInput(join(dir, 'data'), { admin: await adminConfig() }));
      const log = createLogger('silent');
      const sources: AdminSources = {
        queue: new LocalQueueOps(backend.queue, log, 0, { sharedQueue: backend.shared }),
        metrics: async () => '',
        readiness: async () => ({ ready: true, problems: [], checkedAt: new Date().toISOString() }),
        policy: undefined as never,
      };
      admin = (await startAdminListener(config, join(dir, 'data'), sources, log)) as AdminListener;
      url = `http://127.0.0.1:${admin.port}`;
      // Committed in an order unrelated to receivedAt, as several connections would.
      const times = Array.from({ length: N }, (_, i) => BASE + Math.floor(((i * 7919) % N) / 3));
      order = (await enqueue(backend.queue, times)).sort(comparePositions).map((p) => p.id);
    });
    afterAll(async () => {
      await admin?.close();
      await backend?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('answers a bounded first page by default (100, oldest first), with the total and the next cursor', async () => {
      const r = await call(`${url}/api/v1/queue`, { key: KEYS.ro });
      expect(r.status).toBe(200);
      const entries = r.body as Entry[];
      expect(entries.length).toBe(100);
      expect(entries.map((e) => e.id)).toEqual(order.slice(0, 100));
      // The entries keep the shape they always had.
      expect(entries[0]).toMatchObject({ shard: 0, mailFrom: 'sender@client.test', recipients: [{ rcpt: 'r@refusing.test', status: 'pending', attempts: 0 }] });
      expect(r.headers.get('x-postern-total')).toBe(String(N));
      const next = r.headers.get('x-postern-next-cursor');
      expect(next).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(r.headers.get('link')).toBe(`</api/v1/queue?limit=100&cursor=${next}>; rel="next"`);
    });

    it('walking the pages lists each of the 5,000 messages exactly once, in order; the last page has no next cursor', async () => {
      const w = await walk(url, 1000);
      expect(w.sizes).toEqual([1000, 1000, 1000, 1000, 1000]);
      expect(w.ids).toEqual(order);
      expect(new Set(w.totals)).toEqual(new Set([N]));
      // Pages that end inside a millisecond shared by several messages.
      const odd = await walk(url, 97);
      expect(odd.ids).toEqual(order);
      expect(odd.sizes.length).toBe(Math.ceil(N / 97));
    });

    it('refuses bad parameters with 400 naming the parameter', async () => {
      const notACursor = Buffer.from('{"hello":"there"}').toString('base64url');
      const cases: [string, RegExp][] = [
        ['limit=0', /^limit must be >= 1$/],
        ['limit=1001', /^limit must be <= 1000$/],
        ['limit=ten', /^limit must be integer$/],
        ['limit=', /^limit must be integer$/],
        ['cursor=%21%21', /^cursor must match pattern/],
        [`cursor=${notACursor}`, /^cursor: not a cursor this API gave out/],
        ['status=deferred', /^unknown query parameter status$/],
        ['domain=refusing.test&limit=5', /^unknown query parameter domain$/],
      ];
      for (const [query, message] of cases) {
        const r = await call(`${url}/api/v1/queue?${query}`, { key: KEYS.ro });
        expect({ query, status: r.status, message: (r.body as { message?: string }).message }).toEqual({ query, status: 400, message: expect.stringMatching(message) });
      }
      expect((await call(`${url}/api/v1/queue?limit=1000`, { key: KEYS.ro })).status).toBe(200);
    });

    it('the OpenAPI document names the parameters and the paging headers', async () => {
      type Op = { parameters: { name: string; in: string; schema: Record<string, unknown> }[]; responses: Record<string, { headers?: Record<string, unknown> }> };
      const doc = (await call(`${url}/openapi.json`)).body as { paths: Record<string, { get: Op }> };
      const op = doc.paths['/api/v1/queue']!.get;
      expect(op.parameters.map((p) => [p.name, p.in, p.schema])).toEqual([
        ['limit', 'query', expect.objectContaining({ type: 'integer', minimum: 1, maximum: 1000, default: 100 })],
        ['cursor', 'query', expect.objectContaining({ type: 'string' })],
      ]);
      expect(Object.keys(op.responses['200']?.headers ?? {}).sort()).toEqual(['link', 'x-postern-next-cursor', 'x-postern-total']);
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '400']));
    });

    it('while messages arrive and leave between pages, none queued throughout is skipped or listed twice', async () => {
      const random = seededRandom(4242);
      const queued = new Set(order);
      const throughout = new Set(order);
      const lateButAfter = new Set<string>();
      let step = 0;
      const w = await walk(url, 450, async (cursor) => {
        step++;
        // 40 leave, listed already or not (a delivery, an operator's DELETE).
        const ids = [...queued];
        for (let k = 0; k < 40; k++) {
          const id = ids.splice(Math.floor(random() * ids.length), 1)[0] as string;
          await backend.queue.remove(id);
          queued.delete(id);
          throughout.delete(id);
        }
        // 30 arrive: 15 new (after every position), 15 sorting before the cursor's position.
        const position = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [number, number, string];
        const later = await enqueue(backend.queue, Array.from({ length: 15 }, (_, k) => BASE + 10_000 + step * 100 + k));
        const earlier = await enqueue(backend.queue, Array.from({ length: 15 }, (_, k) => position[1] - 1 - k));
        for (const p of [...later, ...earlier]) queued.add(p.id);
        for (const p of later) lateButAfter.add(p.id);
      });
      expect(w.ids.length, 'no message listed twice').toBe(new Set(w.ids).size);
      const seen = new Set(w.ids);
      expect([...throughout].filter((id) => !seen.has(id)), 'queued throughout but never listed').toEqual([]);
      expect([...lateButAfter].filter((id) => queued.has(id) && !seen.has(id)), 'arrived after the position and stayed, never listed').toEqual([]);
      expect(w.totals.at(-1)).toBe(queued.size);
      expect(step).toBeGreaterThan(5);
    });
  });
}

pagingSuite('fs spool', async () => {
  const root = mkdtempSync(join(tmpdir(), 'postern-queue-paging-spool-'));
  const queue = new FsSpool(root);
  await queue.open();
  return {
    queue,
    shared: false,
    async close() {
      await queue.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
});

// Skipped only on a developer machine without Redis on 127.0.0.1:6379; under CI=true devRedisAvailable throws (.ci/run starts one).
pagingSuite(
  `Redis on ${DEV_REDIS_URL}`,
  async () => {
    const prefix = testPrefix();
    const queue = await openTestQueue(DEV_REDIS_URL, prefix);
    return {
      queue,
      shared: true,
      async close() {
        await queue.close();
        await deleteKeys(DEV_REDIS_URL, prefix);
      },
    };
  },
  !redisUp,
);
