import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { spoolShardDir } from '../../src/queue/fs/shards.js';
import { testConfigInput, writeConfigFile } from '../helpers/gateway.js';
import { findProgram } from '../helpers/programs.js';

const run = promisify(execFile);
const ENTRY = join(process.cwd(), 'dist', 'cli', 'postern.cjs');
const unshare = findProgram('unshare');
/** Mount namespaces need CAP_SYS_ADMIN (root, as these tests run); CI must be able to make one. */
const canUnshare = Boolean(unshare) && spawnSync(unshare ?? 'unshare', ['-m', 'true']).status === 0;
if (!canUnshare && process.env.CI === 'true') throw new Error('the read-only dataDir test needs a mount namespace (unshare -m), and this machine cannot make one (CI=true: run as root)');

/**
 * Runs the built CLI in a private mount namespace where `readOnly` is a read-only bind
 * mount of itself (EROFS, whoever the process runs as: root ignores permission bits).
 * Only the command sees it; the test's view of the directory never changes.
 */
async function cliWithReadOnly(readOnly: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" || exit 99; shift; exec "$@"';
  try {
    const { stdout, stderr } = await run(unshare as string, ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', readOnly, process.execPath, ENTRY, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * A dataDir the gateway cannot write used to stop the start with
 * "ENOENT: no such file or directory, mkdir '<dataDir>/spool'" (Node's recursive mkdir
 * says so on a read-only file system): neither the cause nor the setting. Now start and
 * check-config name the directory, why, and the key.
 */
// Skipped only on a developer machine without a mount namespace (unshare -m, as root); under CI=true the file throws.
describe.skipIf(!canUnshare)('a dataDir that cannot be written (read-only mount)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-ro-datadir-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('dataDir itself read-only: start and check-config exit 2 naming it and the key', async () => {
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    const file = writeConfigFile(mkdtempSync(join(dir, 'conf-')), testConfigInput(dataDir));
    for (const command of ['start', 'check-config']) {
      const r = await cliWithReadOnly(dataDir, [command, '--config', file]);
      expect(r.stderr).toContain(`dataDir: ${dataDir} is not writable (EROFS: read-only file system); give the user Postern runs as write access to it`);
      expect(r.code).toBe(2);
    }
  });

  it("a spool shard read-only in a writable dataDir (left by an earlier run): named, start exit 2 before it opens anything", async () => {
    const dataDir = join(dir, 'data-shard');
    const shard = spoolShardDir(dataDir, 0);
    mkdirSync(shard, { recursive: true });
    const file = writeConfigFile(mkdtempSync(join(dir, 'conf-')), testConfigInput(dataDir));
    const r = await cliWithReadOnly(shard, ['start', '--config', file]);
    expect(r.stderr).toContain(`dataDir: ${shard} is not writable (EROFS: read-only file system)`);
    expect(r.code).toBe(2);
    expect(r.stdout, 'no log line: nothing started').toBe('');
  });
});
