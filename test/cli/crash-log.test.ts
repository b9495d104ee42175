import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startChildGateway, waitForLog, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';

/**
 * A bug that reaches the top (a rejection nobody handles) is put in the JSON log as
 * gateway.crash before the process exits; it used to reach stderr only. The fault is
 * injected from outside the product: a module preloaded with --import rejects a promise
 * nobody awaits when the process gets SIGUSR2.
 */
describe('gateway.crash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-crash-'));
  const fault = join(dir, 'fault.mjs');
  writeFileSync(fault, "process.on('SIGUSR2', () => { Promise.reject(new Error('injected fault for the test')); });\n");
  const gateways: ChildGateway[] = [];
  afterAll(() => {
    for (const g of gateways) g.killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([1, 2])('workers: %i: an unhandled rejection is logged as gateway.crash (origin, error, stack), then the process exits 1', async (workers) => {
    const dataDir = join(dir, `data-${workers}`);
    const g = await startChildGateway(dir, testConfigInput(dataDir, { workers, log: { level: 'info' } }), { wrap: ['env', `NODE_OPTIONS=--import=${fault}`] });
    gateways.push(g);
    // The process that takes mail: the single one (env execs it, same pid), or a worker.
    const pid = workers === 1 ? (g.proc.pid as number) : Number(execFileSync('pgrep', ['-P', String(g.proc.pid)]).toString().split('\n')[0]);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGUSR2');
    const crash = await waitForLog(g, (l) => l.event === 'gateway.crash');
    expect(crash).toMatchObject({ level: 'fatal', origin: 'unhandledRejection', err: 'injected fault for the test', pid });
    expect(String(crash.stack)).toMatch(/fault\.mjs/);
    if (workers === 1) {
      expect((await g.exited).code).toBe(1);
    } else {
      // The primary saw its worker die and starts it again; the gateway as a whole stays up.
      await waitForLog(g, (l) => l.event === 'gateway.worker-exit' && l.code === 1);
      expect(g.exit()).toBeUndefined();
    }
  });
});
