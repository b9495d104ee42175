import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spoolShardDir } from '../../src/queue/fs/shards.js';
import { adminConfig, call, until } from '../api/admin-helpers.js';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { findProgram } from '../helpers/programs.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

const unshare = findProgram('unshare');
const nsenter = findProgram('nsenter');
const swaks = findProgram('swaks');
const swaksTo = (port: number) =>
  spawnSync(swaks as string, ['--server', '127.0.0.1', '--port', String(port), '--from', 'sender@client.test', '--to', 'r@dest.test', '--helo', 'client.test', '--timeout', '10'], { encoding: 'utf8' });
/** Mount namespaces need CAP_SYS_ADMIN (root, as these tests run); CI must be able to make one. */
const canUnshare = Boolean(unshare && nsenter) && spawnSync(unshare ?? 'unshare', ['-m', 'true']).status === 0;
if (!canUnshare && process.env.CI === 'true') throw new Error('the read-only spool test needs a mount namespace (unshare -m), and this machine cannot make one (CI=true: run as root)');

/**
 * A spool that is read-only for real, whoever the gateway runs as: the gateway runs in a
 * private mount namespace where the spool's directories are bind mounts of themselves,
 * and the test remounts them read-only (EROFS, as after a disk's errors=remount-ro) and
 * writable again from outside, without restarting it. Only the gateway sees this: the
 * host's view of the directories never changes. The spool's log directory holds a file
 * open for writing, and a mount with a writer cannot be made read-only, so the
 * directories are those every new message file is created in: tmp (where the readiness
 * probe writes), msg and state.
 */
// Skipped only on a developer machine without a mount namespace (unshare -m, as root); under CI=true the file throws.
describe.skipIf(!canUnshare)('readiness with a read-only spool (mount namespace)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-ro-spool-'));
  const dataDir = join(dir, 'data');
  const spool = spoolShardDir(dataDir, 0);
  const mounts = ['tmp', 'msg', 'state'].map((d) => join(spool, d));
  let gw: ChildGateway | undefined;
  afterAll(() => {
    gw?.killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  const remount = (mode: 'ro' | 'rw') => {
    for (const m of mounts) execFileSync(nsenter as string, ['-t', String(gw!.proc.pid), '-m', 'mount', '-o', `remount,bind,${mode}`, m, m]);
  };

  it('/readyz 503 and SMTP 451 4.3.0 (swaks and the test client) while read-only; writable again, both recover without a restart', async () => {
    for (const m of mounts) mkdirSync(m, { recursive: true });
    const bindAll = 'for d in "$@"; do [ "$d" = -- ] && { shift; break; }; mount --bind "$d" "$d" || exit 1; shift; done; exec "$@"';
    gw = await startChildGateway(
      dir,
      testConfigInput(dataDir, { workers: 1, log: { level: 'info' }, admin: await adminConfig(), health: { probeInterval: '100ms' }, delivery: { routes: { '*': { nexthop: '127.0.0.1:9', tls: 'none' } }, retry: { initialDelay: '1h' } } }),
      { wrap: [unshare as string, '-m', '--propagation', 'private', 'sh', '-c', bindAll, 'sh', ...mounts, '--'] },
    );
    await until(() => gw!.logs.some((l) => l.event === 'admin.listen'), 10_000, 'admin listener');
    const admin = `http://127.0.0.1:${gw.logs.find((l) => l.event === 'admin.listen')?.port as number}`;
    const readyz = () => call(`${admin}/readyz`);
    expect((await readyz()).status).toBe(200);

    remount('ro');
    try {
      await until(async () => (await readyz()).status === 503, 5000, '/readyz 503');
      const r = await readyz();
      expect(r.body).toMatchObject({ ready: false, problems: [{ check: 'spool', code: 451 }] });
      expect((r.body as { problems: { reason: string }[] }).problems[0]?.reason).toMatch(/^spool not writable: EROFS: read-only file system/);
      // Outside the gateway's namespace the directory is as writable as ever.
      writeFileSync(join(mounts[0] as string, 'host-view'), 'x');
      rmSync(join(mounts[0] as string, 'host-view'));

      if (swaks) {
        const out = swaksTo(gw.port);
        expect(out.status).not.toBe(0);
        expect(out.stdout).toMatch(/^<\*\* +451 4\.3\.0 /m);
      }
      const refused = await sendMail(gw.port, { from: 'sender@client.test', to: ['r@dest.test'], raw: testMessage() });
      expect(refused).toMatchObject({ ok: false });
      expect(refused.response).toMatch(/^451 4\.3\.0/);
      expect(gw.logs.filter((l) => l.event === 'health.not-ready')).toHaveLength(1);
    } finally {
      remount('rw');
    }
    await until(async () => (await readyz()).status === 200, 5000, '/readyz 200 again');
    expect(gw.logs.filter((l) => l.event === 'health.ready')).toHaveLength(1);
    const accepted = await sendMail(gw.port, { from: 'sender@client.test', to: ['r@dest.test'], raw: testMessage() });
    expect(accepted.ok).toBe(true);
    if (swaks) {
      const out = swaksTo(gw.port);
      expect(out.stdout).toMatch(/^<- +250 2\.0\.0 Ok: queued as /m);
      expect(out.status).toBe(0);
    }
    // The same process all along.
    expect(gw.logs.filter((l) => l.event === 'gateway.start')).toHaveLength(1);
  });
});
