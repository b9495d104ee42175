import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RedisQueue } from '../../src/queue/redis/queue.js';
import { findProgram } from '../helpers/programs.js';
import { commitBody, openTestQueue, testPrefix } from './redis-harness.js';
import { freePort, startRedisServer, type RedisServer } from './redis-server.js';

const redisServer = findProgram('redis-server');
/** AOF with fsync per write: the lease taken before the kill is still there after the restart. */
const SAFE = ['--appendonly', 'yes', '--appendfsync', 'always', '--save', ''];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` holds or `ms` passed; returns whether it held (no timing is asserted). */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await sleep(50);
  }
  return false;
}

// Skipped only on a developer machine without a redis-server binary; under CI=true findProgram throws.
describe.skipIf(!redisServer)('leases across a Redis outage (a redis-server of our own, killed and started again)', () => {
  const dirs: string[] = [];
  const servers: RedisServer[] = [];
  const queues: RedisQueue[] = [];
  afterAll(async () => {
    for (const q of queues) await q.close().catch(() => undefined);
    for (const s of servers) await s.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const start = async (port: number, dir: string) => {
    const s = await startRedisServer(redisServer as string, port, ['--dir', dir, ...SAFE]);
    servers.push(s);
    return s;
  };
  /** A redis-server on a port and directory of its own; restart() starts it again on both. */
  const fresh = async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'postern-redis-lease-'));
    dirs.push(dir);
    return { server: await start(port, dir), restart: () => start(port, dir) };
  };

  it('a lease whose save and release failed while Redis was down is not renewed: it expires and another instance takes the message', async () => {
    const prefix = testPrefix();
    let { server, restart } = await fresh();
    // Renewed ten times per lease: a lease this instance still counted as held would never run out.
    const a = await openTestQueue(server.url, prefix, { leaseTimeMs: 2000, heartbeatMs: 100 });
    queues.push(a);
    const env = await commitBody(a, 'Subject: blip\r\n\r\nx\r\n');
    const [held] = await a.lease(Date.now(), 1);
    expect(held?.envelope.id).toBe(env.id);

    // The worker's attempt ends while Redis is gone: its save fails, and so does the release
    // it tries next (src/deliver/worker.ts does exactly this, ignoring the release's error).
    await server.kill('SIGKILL');
    const state = { recipients: held!.state.recipients.map((r) => ({ ...r, attempts: 1, lastResponse: '451 4.4.1 try later' })) };
    await expect(a.save(env.id, state)).rejects.toThrow();
    await a.release(env.id).catch(() => undefined);

    server = await restart();
    // A is connected again and beating (its client reconnects by itself).
    expect(await eventually(async () => (await a.get(env.id)) !== undefined, 10_000)).toBe(true);
    await sleep(300);

    const b = await openTestQueue(server.url, prefix, { leaseTimeMs: 2000, heartbeatMs: 100 });
    queues.push(b);
    let taken: string[] = [];
    const takenOver = await eventually(async () => (taken = (await b.lease(Date.now(), 10)).map((m) => m.envelope.id)).length > 0, 15_000);
    expect(takenOver, 'the lease of the failed save was renewed by the heartbeat and never ran out').toBe(true);
    expect(taken).toEqual([env.id]);
    // The failed save recorded nothing: the message is tried again from where it was.
    expect((await b.get(env.id))?.state.recipients[0]?.attempts).toBe(0);
    // B holds it now, whatever A does: A's close() does not disturb B's lease.
    await a.close();
    queues.splice(queues.indexOf(a), 1);
    await b.remove(env.id);
    expect(await b.get(env.id)).toBeUndefined();
  });

  it('when Redis is back the queue wakes its worker by itself: deliveries do not wait for new mail or a backoff to run out', async () => {
    const prefix = testPrefix();
    let { server, restart } = await fresh();
    // Heartbeats far apart: only the reconnect can wake the worker within this test.
    const q = await openTestQueue(server.url, prefix, { heartbeatMs: 3_600_000 });
    queues.push(q);
    const env = await commitBody(q, 'Subject: queued before the outage\r\n\r\nx\r\n');
    let wakes = 0;
    q.onWake(() => wakes++);

    await server.kill('SIGKILL');
    // The worker's lease fails meanwhile; it would sleep out its backoff.
    await expect(q.lease(Date.now(), 10)).rejects.toThrow();
    await sleep(500);
    expect(wakes).toBe(0);
    server = await restart();
    // No commit, no save, no other instance: the client's reconnect alone wakes the worker, and
    // once more a moment later (a worker ignores wake-ups right after a failed lease).
    expect(await eventually(async () => wakes >= 2, 10_000), `woken ${wakes} times`).toBe(true);
    expect((await q.lease(Date.now(), 10)).map((m) => m.envelope.id)).toEqual([env.id]);
  });
});
