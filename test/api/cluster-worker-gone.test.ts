import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newQueueId } from '../../src/queue/ids.js';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { findProgram } from '../helpers/programs.js';
import { adminConfig, call, KEYS, until } from './admin-helpers.js';

const ss = findProgram('ss');

/** Bytes waiting unread on the Unix sockets of process `pid` (its IPC channel to the primary). */
function unreadBytes(pid: number): number {
  const lines = execFileSync(ss as string, ['-x', '-p', '-n'], { encoding: 'utf8' }).split('\n');
  return lines.filter((l) => l.includes(`pid=${pid},`)).reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[2]), 0);
}

/**
 * A change (DELETE /api/v1/queue/:id, retry) is asked of the workers one at a time, from
 * the list of workers taken when the call came in. A worker that exited meanwhile used
 * to be sent the next question anyway: Node reported the closed channel as an 'error'
 * event nobody listened to, and the primary died (gateway.crash), taking every worker
 * with it. The window is opened on purpose: the first worker asked is stopped (SIGSTOP)
 * until the second, still on the list, has been killed and its exit seen.
 */
// Skipped only on a developer machine without ss (iproute2); under CI=true findProgram throws.
describe.skipIf(!ss)('cluster primary: a worker that exits during an admin call', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-worker-gone-'));
  let gw: ChildGateway | undefined;
  afterAll(() => {
    gw?.killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is no answer from its shard: the call is answered 503, the primary lives on and starts the worker again', async () => {
    const g = (gw = await startChildGateway(dir, testConfigInput(join(dir, 'data'), { workers: 2, log: { level: 'info' }, admin: await adminConfig() })));
    const starts = (shard: number) => g.logs.filter((l) => l.event === 'gateway.start' && l.shard === shard);
    const exits = (shard: number) => g.logs.filter((l) => l.event === 'gateway.worker-exit' && l.shard === shard);
    const readies = () => g.logs.filter((l) => l.event === 'gateway.ready' && l.workers === 2);

    // Workers are asked in the order they said ready: restart shard 1's so it comes second.
    await until(() => readies().length === 1, 15_000, 'both workers ready');
    const url = `http://127.0.0.1:${g.logs.find((l) => l.event === 'admin.listen')!.port as number}`;
    process.kill(starts(1)[0]!.pid as number, 'SIGKILL');
    await until(() => starts(1).length === 2 && readies().length === 2, 15_000, 'shard 1 started again and ready');
    const first = starts(0)[0]!.pid as number;
    const second = starts(1)[1]!.pid as number;

    process.kill(first, 'SIGSTOP');
    let answered: Promise<Awaited<ReturnType<typeof call>>>;
    try {
      expect(unreadBytes(first)).toBe(0);
      answered = call(`${url}/api/v1/queue/${newQueueId()}?reason=test`, { method: 'DELETE', key: KEYS.op });
      // The primary has asked the first worker (the question waits in its socket) ...
      await until(() => unreadBytes(first) > 0, 10_000, 'the question to the stopped worker');
      // ... and the second exits before its turn comes.
      process.kill(second, 'SIGKILL');
      await until(() => exits(1).length === 2, 10_000, 'the second exit of shard 1 seen');
    } finally {
      process.kill(first, 'SIGCONT');
    }

    const r = await answered.catch(async (err: Error) => {
      await Promise.race([g.exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
      const crash = g.logs.find((l) => l.event === 'gateway.crash');
      throw new Error(`the call got no answer (${err.message}); the gateway's exit: ${JSON.stringify(g.exit())}; its gateway.crash: ${JSON.stringify(crash && { pid: crash.pid, err: crash.err })}`);
    });
    expect(g.logs.filter((l) => l.event === 'gateway.crash')).toEqual([]);
    expect(r.status).toBe(503);
    expect((r.body as { message: string }).message).toMatch(/^message \w+ is not on the shards that answered, and the worker of shard 1 exited during the call \(it is started again\): try again in a moment$/);

    // Still the same primary, which starts the worker again; then the call is answered in full.
    await until(() => starts(1).length === 3 && readies().length === 3, 15_000, 'shard 1 started again and ready');
    expect(g.exit()).toBeUndefined();
    expect((await call(`${url}/api/v1/queue/${newQueueId()}?reason=test`, { method: 'DELETE', key: KEYS.op })).status).toBe(404);
  });
});
