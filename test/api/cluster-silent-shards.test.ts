import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spoolShardDir } from '../../src/queue/fs/shards.js';
import { newQueueId } from '../../src/queue/ids.js';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { closedPort } from '../helpers/closed-port.js';
import { testConfigInput } from '../helpers/gateway.js';
import { queueInShard } from '../cluster/spool-helpers.js';
import { adminConfig, call, KEYS, type Call, until } from './admin-helpers.js';

/** The IPC deadline of the primary's admin questions (ClusterSources' default: the config has no setting for it). */
const IPC_TIMEOUT_MS = 5000;

interface TwoWorkers {
  g: ChildGateway;
  url: string;
  /** A message queued in shard 0 before the start (deferred for an hour: it stays there). */
  inShard0: string;
  /** The pid of shard `shard`'s first worker. */
  workerPid(shard: number): number;
}

/** A gateway with workers: 2 and its admin listener, on 127.0.0.1 ports, with one message in shard 0. */
async function startTwoWorkers(dir: string): Promise<TwoWorkers> {
  const dataDir = join(dir, 'data');
  const [inShard0] = await queueInShard(dataDir, 0, 1);
  const config = testConfigInput(dataDir, {
    workers: 2,
    log: { level: 'info' },
    admin: await adminConfig(),
    delivery: { routes: { '*': { nexthop: `127.0.0.1:${await closedPort()}`, tls: 'none' } }, retry: { initialDelay: '1h', maxDelay: '1h' } },
  });
  const g = await startChildGateway(dir, config);
  await until(() => g.logs.some((l) => l.event === 'gateway.ready' && l.workers === 2), 15_000, 'both workers ready');
  const url = `http://127.0.0.1:${g.logs.find((l) => l.event === 'admin.listen')!.port as number}`;
  const workerPid = (shard: number) => g.logs.find((l) => l.event === 'gateway.start' && l.shard === shard)!.pid as number;
  return { g, url, inShard0: inShard0!, workerPid };
}

const messageOf = (r: Call) => (r.body as { message?: string }).message;

/**
 * A question about one message is asked of the live workers only. A shard whose worker
 * died and is being started again used to be skipped silently: a message it holds was
 * answered 404 "not found". Here that shard's worker cannot come back until the test
 * lets it: its spool lock names a live process (this one), which the new worker waits
 * for and then gives up on, again and again, as it would behind a stuck predecessor.
 */
describe('cluster primary: a question about one message while a shard has no live worker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-shard-restarting-'));
  let gw: ChildGateway | undefined;
  afterAll(() => {
    gw?.killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is answered 503 with Retry-After (not 404) unless a shard that answered has the message', async () => {
    const { g, url, inShard0, workerPid } = await startTwoWorkers(dir);
    gw = g;
    const exits = () => g.logs.filter((l) => l.event === 'gateway.worker-exit' && l.shard === 1);
    const readies = () => g.logs.filter((l) => l.event === 'gateway.ready' && l.workers === 2);

    // Written over the live worker's own lock, so no replacement can take it whenever it starts.
    const lock = join(spoolShardDir(join(dir, 'data'), 1), 'postern.lock');
    writeFileSync(lock, String(process.pid));
    process.kill(workerPid(1), 'SIGKILL');
    await until(() => exits().length >= 1, 10_000, 'the exit of shard 1 seen by the primary');

    const unknown = newQueueId();
    const answers = [
      await call(`${url}/api/v1/queue/${unknown}`, { key: KEYS.ro }),
      await call(`${url}/api/v1/queue/${unknown}/retry`, { method: 'POST', key: KEYS.op }),
      await call(`${url}/api/v1/queue/${unknown}?reason=test`, { method: 'DELETE', key: KEYS.op }),
    ];
    for (const r of answers) {
      expect([r.status, r.headers.get('retry-after'), messageOf(r)]).toEqual([503, '5', `message ${unknown} is not on the shards that answered, and the worker of shard 1 is being started again: try again in a moment`]);
    }
    // Shard 0 answered and has it: that answer is right whatever shard 1 holds.
    expect(await call(`${url}/api/v1/queue/${inShard0}`, { key: KEYS.ro })).toMatchObject({ status: 200, body: { id: inShard0, shard: 0 } });
    expect(readies()).toHaveLength(1); // shard 1 was never back meanwhile

    // Once its worker is back, what no shard has is not found.
    rmSync(lock);
    await until(() => readies().length === 2, 30_000, 'shard 1 started again and ready');
    expect((await call(`${url}/api/v1/queue/${unknown}`, { key: KEYS.ro })).status).toBe(404);
  });
});

/**
 * A worker that is running but does not answer (here: stopped with SIGSTOP) made the
 * primary's admin calls fail with a bare 500 once the IPC deadline passed. Now that is
 * a 503 with Retry-After naming the shard, logged as admin.worker-timeout; a list or the
 * metrics are not given without the silent shard, and a message a shard that answered
 * has is still shown.
 */
describe('cluster primary: a worker that does not answer within the IPC deadline', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-worker-hung-'));
  let gw: ChildGateway | undefined;
  let stopped: number | undefined;
  afterAll(() => {
    if (stopped !== undefined) resume(stopped);
    gw?.killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is a 503 with Retry-After naming its shard, logged; the other shards still show what they hold', async () => {
    const { g, url, inShard0, workerPid } = await startTwoWorkers(dir);
    gw = g;
    const hung = (stopped = workerPid(1));
    const unknown = newQueueId();

    process.kill(hung, 'SIGSTOP');
    let list: Call, metrics: Call, missing: Call, removed: Call, found: Call;
    try {
      // Asked together: each waits out the same deadline.
      [list, metrics, missing, removed, found] = await Promise.all([
        call(`${url}/api/v1/queue`, { key: KEYS.ro }),
        call(`${url}/metrics`),
        call(`${url}/api/v1/queue/${unknown}`, { key: KEYS.ro }),
        call(`${url}/api/v1/queue/${unknown}?reason=test`, { method: 'DELETE', key: KEYS.op }),
        call(`${url}/api/v1/queue/${inShard0}`, { key: KEYS.ro }),
      ]);
    } finally {
      resume(hung);
      stopped = undefined;
    }

    const incomplete = `shard 1 did not answer within ${IPC_TIMEOUT_MS} ms (its worker is running but not answering: stopped, hung or overloaded), and an answer without it would be incomplete: try again in a moment`;
    const notFound = `message ${unknown} is not on the shards that answered, and shard 1 did not answer within ${IPC_TIMEOUT_MS} ms (its worker is running but not answering, and may still act on the call when it does): try again in a moment`;
    expect([list, metrics, missing, removed].map((r) => [r.status, r.headers.get('retry-after'), messageOf(r)])).toEqual([
      [503, '5', incomplete],
      [503, '5', incomplete],
      [503, '5', notFound],
      [503, '5', notFound],
    ]);
    expect(found).toMatchObject({ status: 200, body: { id: inShard0, shard: 0 } });

    // The primary says which worker did not answer, once per question asked of it.
    const timeouts = () => g.logs.filter((l) => l.event === 'admin.worker-timeout');
    await until(() => timeouts().length >= 5, 10_000, 'admin.worker-timeout lines');
    expect(timeouts().every((l) => l.level === 'error' && l.process === 'primary' && l.shard === 1 && l.pid === hung && l.timeoutMs === IPC_TIMEOUT_MS)).toBe(true);
    expect(new Set(timeouts().map((l) => l.op))).toEqual(new Set(['queue.list', 'metrics', 'queue.show', 'queue.remove']));

    // Running again, it answers: the list is whole again.
    const again = await call(`${url}/api/v1/queue`, { key: KEYS.ro });
    expect([again.status, (again.body as { id: string }[]).map((e) => e.id)]).toEqual([200, [inShard0]]);
  });
});

/** SIGCONT: a stopped worker left stopped would outlive the test (SIGKILL of its group ends it all the same). */
function resume(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // already gone
  }
}
