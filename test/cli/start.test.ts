import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startChildGateway, waitForLog, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { findProgram } from '../helpers/programs.js';

const prlimit = findProgram('prlimit');

/**
 * A stop whose last writes fail: the audit trail writes what it holds (gateway.stopped
 * among it) once more as it closes, and the disk refuses. The fault is the kernel's, put
 * on the running gateway from outside: prlimit lowers its file size limit (RLIMIT_FSIZE)
 * to one byte, so every write that would grow a file fails with EFBIG, as on a full
 * quota, whoever the gateway runs as (root included). Node ignores the SIGXFSZ that comes
 * with it; the log goes to a pipe, which the limit does not touch.
 */
// Skipped only on a developer machine without prlimit (util-linux); under CI=true findProgram throws.
describe.skipIf(!prlimit)('postern start: a stop that cannot write its last records', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-stop-'));
  let g: ChildGateway | undefined;
  afterAll(() => {
    g?.killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs gateway.stop-failed with the error and exits 1 on purpose, not as a crash', async () => {
    g = await startChildGateway(dir, testConfigInput(join(dir, 'data'), { workers: 1, log: { level: 'info' } }));
    await waitForLog(g, (l) => l.event === 'admin.listen');
    execFileSync(prlimit as string, ['--pid', String(g.proc.pid), '--fsize=1']);
    g.proc.kill('SIGTERM');
    const { code } = await g.exited;
    expect(g.logs.filter((l) => l.event === 'gateway.crash'), 'no crash line').toEqual([]);
    expect(g.logs.find((l) => l.event === 'gateway.stop-failed')).toMatchObject({ level: 'error', err: expect.stringMatching(/EFBIG/) });
    expect(code).toBe(1);
  });
});
