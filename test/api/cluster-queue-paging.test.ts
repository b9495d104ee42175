import cluster, { type Worker } from 'node:cluster';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSources } from '../../src/api/cluster-ops.js';
import { startAdminListener, type AdminListener } from '../../src/api/start.js';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { comparePositions, type ListPosition } from '../../src/queue/list-page.js';
import { testConfigInput } from '../helpers/gateway.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { adminConfig, call, KEYS } from './admin-helpers.js';

const DIST = join(process.cwd(), 'dist');
const dist = (path: string) => JSON.stringify(pathToFileURL(join(DIST, path)).href);
const SHARDS = 3;
const PER_SHARD = 400;
const BASE = 1_700_000_000_000;

/**
 * A worker process as built (dist/): its own fs spool shard, filled with PER_SHARD
 * messages whose receivedAt spread over 300 ms (so many share a millisecond, within the
 * shard and across shards), answering the primary's admin questions over the real IPC
 * channel with LocalQueueOps. 'test:*' messages let the test add and remove messages
 * between pages, as arrivals and deliveries would.
 */
const WORKER = `
import { serveIpc } from ${dist('api/ipc.js')};
import { LocalQueueOps } from ${dist('api/queue-ops.js')};
import { FsSpool } from ${dist('queue/fs/spool.js')};
import { createLogger } from ${dist('events/logger.js')};
const shard = Number(process.env.SHARD);
const spool = new FsSpool(process.env.SPOOL);
await spool.open();
const ops = new LocalQueueOps(spool, createLogger('silent'), shard);
let seed = 17 + shard;
const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const add = async (receivedAt) => {
  const w = await spool.receive({ receivedAt, mailFrom: 's@client.test', rcptTo: ['r@refusing.test'], client: { ip: '127.0.0.1', helo: 'c', sessionId: 's' }, bodyType: '7bit', smtpUtf8: false });
  await w.write(Buffer.from('x\\r\\n'));
  const e = await w.commit();
  return { receivedAt: e.receivedAt, id: e.id };
};
const added = await Promise.all(Array.from({ length: Number(process.env.COUNT) }, () => add(${BASE} + Math.floor(random() * 300))));
serveIpc({ 'queue.list': (query) => ops.list(query), 'queue.show': (id) => ops.show(id) });
process.on('message', async (m) => {
  if (m?.type === 'test:add') process.send({ type: 'test:done', added: await Promise.all(m.times.map(add)) });
  if (m?.type === 'test:remove') {
    for (const id of m.ids) await spool.remove(id);
    process.send({ type: 'test:done' });
  }
});
process.send({ type: 'up', added });
`;

interface Entry {
  id: string;
  shard: number;
}

/** Asks one test worker to add or remove messages; resolves with its answer. */
function tell(worker: Worker, message: Record<string, unknown>): Promise<{ added?: ListPosition[] }> {
  return new Promise((resolve) => {
    const onMessage = (m: { type?: string; added?: ListPosition[] }) => {
      if (m?.type !== 'test:done') return;
      worker.off('message', onMessage);
      resolve(m);
    };
    worker.on('message', onMessage);
    worker.send(message);
  });
}

/**
 * A cluster primary's GET /api/v1/queue: each shard answers one page after the cursor,
 * and the primary makes the gateway's page of them, so neither the IPC messages nor the
 * answer grow with the queue, and a walk through the pages sees every message of every
 * shard once.
 */
describe('GET /api/v1/queue pages on a cluster primary (fs spool, 3 shards)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cluster-paging-'));
  const workers: Worker[] = [];
  const owner = new Map<string, number>();
  const queued = new Map<string, ListPosition>();
  let sources: ClusterSources;
  let admin: AdminListener;
  let url: string;

  beforeAll(async () => {
    if (!existsSync(join(DIST, 'api', 'queue-ops.js'))) throw new Error(`${DIST} is missing: run "npm run build" (npm test does it for you)`);
    writeFileSync(join(dir, 'worker.mjs'), WORKER);
    cluster.setupPrimary({ exec: join(dir, 'worker.mjs'), execArgv: [], silent: true });
    const up: Promise<{ added: ListPosition[] }>[] = [];
    for (let shard = 0; shard < SHARDS; shard++) {
      const worker = cluster.fork({ SHARD: String(shard), SPOOL: join(dir, `spool-${shard}`), COUNT: String(PER_SHARD) });
      workers.push(worker);
      up.push(new Promise((resolve) => worker.once('message', resolve)));
    }
    for (const [shard, { added }] of (await Promise.all(up)).entries()) {
      for (const p of added) {
        owner.set(p.id, shard);
        queued.set(p.id, p);
      }
    }
    sources = new ClusterSources(() => workers.map((worker, shard) => ({ worker, shard })), { shards: SHARDS, log: createLogger('silent'), policy: undefined as never, timeoutMs: 10_000 });
    const config = validateConfig(testConfigInput(join(dir, 'data'), { admin: await adminConfig() }));
    admin = (await startAdminListener(config, join(dir, 'data'), sources, createLogger('silent'))) as AdminListener;
    url = `http://127.0.0.1:${admin.port}`;
  });
  afterAll(async () => {
    await admin?.close();
    sources?.close();
    for (const w of workers) w.process.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const page = async (limit: number, cursor: string | null) => {
    const r = await call(`${url}/api/v1/queue?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, { key: KEYS.ro });
    expect(r.status, r.text).toBe(200);
    return { entries: r.body as Entry[], next: r.headers.get('x-postern-next-cursor'), total: Number(r.headers.get('x-postern-total')) };
  };

  it('lists every shard\'s messages once, in (receivedAt, id) order across shards, a page at a time, with the total of all shards', async () => {
    const order = [...queued.values()].sort(comparePositions).map((p) => p.id);
    const first = await page(100, null);
    expect(first.total).toBe(SHARDS * PER_SHARD);
    expect(first.entries.map((e) => e.id)).toEqual(order.slice(0, 100));
    expect(first.entries.map((e) => e.shard)).toEqual(order.slice(0, 100).map((id) => owner.get(id)));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const p = await page(37, cursor);
      expect(p.entries.length).toBeLessThanOrEqual(37);
      seen.push(...p.entries.map((e) => e.id));
      cursor = p.next;
      pages++;
    } while (cursor && pages < 1000);
    expect(seen).toEqual(order);
    expect(pages).toBe(Math.ceil(order.length / 37));
  });

  it('while messages arrive on and leave every shard between pages, none queued throughout is skipped or listed twice', async () => {
    const random = seededRandom(99);
    const throughout = new Set(queued.keys());
    const lateButAfter = new Set<string>();
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const p = await page(60, cursor);
      for (const e of p.entries) {
        expect(queued.has(e.id), `${e.id} listed after its removal`).toBe(true);
        seen.push(e.id);
      }
      cursor = p.next;
      pages++;
      if (!cursor) break;
      const position = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [number, number, string];
      for (const [shard, worker] of workers.entries()) {
        const mine = [...queued.keys()].filter((id) => owner.get(id) === shard);
        const leaving = Array.from({ length: 6 }, () => mine.splice(Math.floor(random() * mine.length), 1)[0] as string);
        await tell(worker, { type: 'test:remove', ids: leaving });
        for (const id of leaving) {
          queued.delete(id);
          throughout.delete(id);
        }
        // Arrivals on the same millisecond as the position (either side of it by id), before it, and after everything.
        const { added = [] } = await tell(worker, { type: 'test:add', times: [position[1], position[1], position[1] - 1, BASE + 1000 + pages] });
        for (const a of added) {
          queued.set(a.id, a);
          owner.set(a.id, shard);
          if (comparePositions(a, { receivedAt: position[1], id: position[2] }) > 0) lateButAfter.add(a.id);
        }
      }
    } while (pages < 1000);
    expect(seen.length, 'no message listed twice').toBe(new Set(seen).size);
    const seenSet = new Set(seen);
    expect([...throughout].filter((id) => !seenSet.has(id)), 'queued throughout but never listed').toEqual([]);
    expect([...lateButAfter].filter((id) => queued.has(id) && !seenSet.has(id)), 'arrived after the position and stayed, never listed').toEqual([]);
    expect(pages).toBeGreaterThan(10);
  });
});
