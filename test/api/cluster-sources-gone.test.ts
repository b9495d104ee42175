import cluster, { type Worker } from 'node:cluster';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSources } from '../../src/api/cluster-ops.js';
import { createLogger } from '../../src/events/logger.js';

const IPC = join(process.cwd(), 'dist', 'api', 'ipc.js');

/**
 * A worker process answering the admin questions over the real IPC channel (serveIpc as
 * built), as the worker of spool shard SHARD holding one message, m<SHARD>.
 */
const WORKER = `
import { serveIpc } from ${JSON.stringify(pathToFileURL(IPC).href)};
const shard = Number(process.env.SHARD);
const entry = { id: 'm' + shard, shard, receivedAt: new Date(0).toISOString(), mailFrom: 'a@client.test', size: 1, client: { ip: '127.0.0.1', helo: 'c' }, recipients: [] };
serveIpc({
  'queue.list': async () => ({ entries: [entry], total: 1, shared: false }),
  'queue.show': async (id) => (id === entry.id ? entry : undefined),
  'queue.retry': async (id) => (id === entry.id ? { result: 'done', id, shard, recipients: 1 } : { result: 'not-found', id }),
  'queue.remove': async (id) => (id === entry.id ? { result: 'done', id, shard, recipients: 1 } : { result: 'not-found', id }),
  metrics: async () => [{ name: 'postern_messages_accepted_total', help: 'accepted', type: 'counter', aggregator: 'sum', values: [{ value: 1 + shard, labels: {} }] }],
  health: async () => ({ ready: true, problems: [], checkedAt: new Date().toISOString() }),
});
process.send({ type: 'up' });
`;

/**
 * The cluster primary's admin sources ask the workers it listed when a call came in. One
 * of them may have exited since: here shard 1's worker is killed, and its exit seen,
 * while the list still names it. Sending to it used to make Node emit 'error' on the
 * worker (ERR_IPC_CHANNEL_CLOSED), which ended the primary; now it is no answer from
 * shard 1, and the other shards still answer.
 */
describe('cluster admin sources: a listed worker that has exited', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-sources-gone-'));
  const workers: Worker[] = [];
  /** What Node reported on the workers: a send to a closed channel without a callback lands here. */
  const errors: string[] = [];
  let sources: ClusterSources;

  beforeAll(async () => {
    if (!existsSync(IPC)) throw new Error(`${IPC} is missing: run "npm run build" (npm test does it for you)`);
    writeFileSync(join(dir, 'worker.mjs'), WORKER);
    cluster.setupPrimary({ exec: join(dir, 'worker.mjs'), execArgv: [], silent: true });
    for (const shard of [0, 1]) {
      const worker = cluster.fork({ SHARD: String(shard) });
      worker.on('error', (err: Error) => errors.push(err.message));
      workers.push(worker);
    }
    await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
    sources = new ClusterSources(() => workers.map((worker, shard) => ({ worker, shard })), { shards: 2, log: createLogger('silent'), policy: undefined as never, timeoutMs: 3000 });
    const gone = workers[1]!;
    const exited = new Promise((resolve) => gone.once('exit', resolve));
    gone.process.kill('SIGKILL');
    await exited;
  });
  afterAll(() => {
    sources?.close();
    for (const w of workers) w.process.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists, shows and counts what the other shards hold', async () => {
    expect((await sources.queue.list({ limit: 100 })).entries.map((e) => e.id)).toEqual(['m0']);
    expect((await sources.queue.show('m0'))?.shard).toBe(0);
    expect(await sources.metrics()).toMatch(/^postern_messages_accepted_total 1$/m);
    expect(errors).toEqual([]);
  });

  it('readiness counts the shards that are running, as while a worker is started again', async () => {
    expect(await sources.readiness()).toMatchObject({ ready: true, problems: [] });
    expect(errors).toEqual([]);
  });

  it('a message found elsewhere is changed; one found nowhere is answered 503 (the gone shard may hold it), not 404', async () => {
    expect(await sources.queue.remove('m0', 'test', 'ops')).toEqual({ result: 'done', id: 'm0', shard: 0, recipients: 1 });
    const notFound = { statusCode: 503, message: 'message m1 is not on the shards that answered, and the worker of shard 1 exited during the call (it is started again): try again in a moment' };
    await expect(sources.queue.remove('m1', 'test', 'ops')).rejects.toMatchObject(notFound);
    await expect(sources.queue.retryNow('m1', 'ops')).rejects.toMatchObject(notFound);
    await expect(sources.queue.show('m1')).rejects.toMatchObject(notFound);
    expect(errors).toEqual([]);
  });
});
