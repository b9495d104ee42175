import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startChildGateway, waitForLog, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';

/**
 * shutdown.timeout bounds the stop. Each worker keeps to it; a worker that hangs (its
 * event loop blocked) used to hold the primary, and the service manager's stop, for ever.
 */
describe('the cluster primary keeps to shutdown.timeout', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-stop-deadline-'));
  // Injected from outside the product: a preloaded module that blocks a worker's event
  // loop when it gets SIGTERM (a hung worker). The primary is left alone.
  const hang = join(dir, 'hang.mjs');
  writeFileSync(hang, "import cluster from 'node:cluster';\nif (cluster.isWorker) process.on('SIGTERM', () => { const end = Date.now() + 120_000; while (Date.now() < end); });\n");
  const gateways: ChildGateway[] = [];
  afterAll(() => {
    for (const g of gateways) g.killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('workers still running past shutdown.timeout and its grace are killed, and the primary exits 1', { timeout: 60_000 }, async () => {
    const g = await startChildGateway(dir, testConfigInput(join(dir, 'data'), { workers: 2, log: { level: 'info' }, shutdown: { timeout: '1s' } }), { wrap: ['env', `NODE_OPTIONS=--import=${hang}`] });
    gateways.push(g);
    await waitForLog(g, (l) => l.event === 'gateway.ready' && l.workers === 2);
    const workers = execFileSync('pgrep', ['-P', String(g.proc.pid)]).toString().trim().split('\n').map(Number);
    expect(workers).toHaveLength(2);
    process.kill(g.proc.pid as number, 'SIGTERM');
    // Without a deadline of its own, the primary waited for its hung workers for ever.
    const { code } = await g.exited;
    expect(code).toBe(1);
    const killed = g.logs.filter((l) => l.event === 'gateway.worker-killed');
    expect(killed.map((l) => l.shard).sort()).toEqual([0, 1]);
    expect(killed[0]).toMatchObject({ level: 'error', afterMs: 1000 + 5000 });
    await waitForLog(g, (l) => l.event === 'gateway.stopped' && l.clean === false);
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
  });
});
