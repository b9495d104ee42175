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

  it('a lease whose save and release failed while Redis was down is not renewed: it expires and another instance takes the message', async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'postern-redis-lease-'));
    dirs.push(dir);
    const prefix = testPrefix();
    let server = await start(port, dir);
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

    server = await start(port, dir);
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
});
