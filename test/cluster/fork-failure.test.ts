import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../api/admin-helpers.js';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { findProgram } from '../helpers/programs.js';

const prlimit = findProgram('prlimit');

/** The soft limit on open files of process `pid`: `value` ('3', or 'unlimited'), or as it is now (no `value`). */
function openFilesLimit(pid: number, value?: string): string {
  if (value) execFileSync(prlimit as string, ['--pid', String(pid), `--nofile=${value}:`]);
  return execFileSync(prlimit as string, ['--pid', String(pid), '--nofile', '--output=SOFT', '--noheadings'], { encoding: 'utf8' }).trim();
}

/**
 * A worker that dies is started again by a timer in the primary. Starting a process can
 * fail (EMFILE, EAGAIN: reported as an 'error' event on the new worker; ENOMEM: thrown):
 * the primary used to crash on it (gateway.crash), taking the other workers with it,
 * while it was recovering from the first worker's death. Here the primary may open no
 * more files (prlimit on it, from outside) when its worker is to be started again.
 */
// Skipped only on a developer machine without prlimit (util-linux); under CI=true findProgram throws.
describe.skipIf(!prlimit)('cluster primary: a worker process that cannot be started again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-fork-failure-'));
  let gw: ChildGateway | undefined;
  afterAll(() => {
    gw?.killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is tried again with backoff while the primary and the other worker keep running', async () => {
    // No admin listener: nothing else in the primary opens files while they are refused.
    const g = (gw = await startChildGateway(dir, testConfigInput(join(dir, 'data'), { workers: 2, log: { level: 'info' }, admin: { enabled: false } })));
    const primary = g.proc.pid as number;
    const starts = (shard: number) => g.logs.filter((l) => l.event === 'gateway.start' && l.shard === shard);
    const readies = () => g.logs.filter((l) => l.event === 'gateway.ready' && l.workers === 2);
    const notStarted = () => g.logs.filter((l) => l.event === 'gateway.worker-exit' && l.shard === 1 && /EMFILE/.test(String(l.err)));
    await until(() => readies().length === 1, 15_000, 'both workers ready');

    const usual = openFilesLimit(primary);
    // Descriptors 0-2 are taken: the IPC channel of a new worker cannot be made.
    openFilesLimit(primary, '3');
    try {
      process.kill(starts(1)[0]!.pid as number, 'SIGKILL');
      await until(() => notStarted().length >= 2 || g.exit() !== undefined, 15_000, 'two failed starts of shard 1');
      if (g.exit()) throw new Error(`the primary exited (${JSON.stringify(g.exit())}), its gateway.crash: ${JSON.stringify(g.logs.find((l) => l.event === 'gateway.crash')?.err)}`);
    } finally {
      if (g.exit() === undefined) openFilesLimit(primary, usual);
    }
    expect(notStarted().slice(0, 2)).toEqual([
      expect.objectContaining({ level: 'error', msg: 'worker process could not be started; starting it again in 2000 ms', restartInMs: 2000 }),
      expect.objectContaining({ level: 'error', msg: 'worker process could not be started; starting it again in 4000 ms', restartInMs: 4000 }),
    ]);
    expect(starts(0)).toHaveLength(1); // the other worker was never touched

    // Files may be opened again: the next try starts it.
    await until(() => starts(1).length === 2 && readies().length === 2, 15_000, 'shard 1 started again and ready');
    expect(g.exit()).toBeUndefined();
    expect(g.logs.filter((l) => l.event === 'gateway.crash')).toEqual([]);
  });
});
