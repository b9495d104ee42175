import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/events/logger.js';
import { HealthMonitor } from '../../src/events/health.js';
import { withinTime } from '../../src/events/health-probes.js';
import { spoolShardDir } from '../../src/queue/fs/shards.js';
import { adminConfig, call, startAdmin, until } from '../api/admin-helpers.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { RawSmtp, sendMail, testMessage } from '../helpers/smtp-client.js';

const limits = { diskFullPercent: 100, diskMinFree: 1, probeInterval: 100 };

describe('HealthMonitor', () => {
  it('asks the journal and Redis hooks live, and names every problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-health-'));
    let journal = false;
    let redis = true;
    const h = new HealthMonitor({ spoolDir: dir, dataDir: dir, limits, logger: createLogger('silent'), journalReady: () => journal, redisReady: () => redis });
    await h.check();
    expect(h.report()).toMatchObject({ ready: false, problems: [{ check: 'journal', code: 451, reason: 'journal sink unavailable' }] });
    expect(h.gate()).toEqual({ ready: false, code: 451, reason: 'journal sink unavailable' });
    redis = false;
    expect(h.report().problems.map((p) => p.check)).toEqual(['journal', 'redis']);
    journal = true;
    redis = true;
    expect(h.gate()).toEqual({ ready: true, reason: 'ready' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('a check that hangs counts as failed once its time is up', async () => {
    const never = new Promise<undefined>(() => undefined);
    expect(await withinTime(never, 50, 'spool')).toEqual({ check: 'spool', code: 451, reason: 'spool check did not finish within 50 ms' });
    expect(await withinTime(Promise.resolve(undefined), 50, 'spool')).toBeUndefined();
  });
});

describe('readiness of a real gateway', () => {
  const s = scenario();
  let gw: TestGateway;
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  let tmp: string;
  beforeAll(async () => {
    // Deliveries go to a closed local port: what is accepted stays queued, deferred.
    gw = await s.gateway({ admin: await adminConfig(), health: { probeInterval: '100ms' }, delivery: { routes: { '*': { nexthop: '127.0.0.1:9', tls: 'none' } } } });
    admin = await startAdmin(gw);
    tmp = join(spoolShardDir(gw.dataDir, 0), 'tmp');
  });
  afterAll(async () => {
    await admin?.close();
  });

  const readyz = () => call(`${admin.url}/readyz`);
  /**
   * Breaks the spool for real, root or not: the directory the spool creates new files in
   * is replaced by a plain file, so creating anything inside it fails with ENOTDIR. (A
   * read-only spool, EROFS, in readonly-spool.test.ts.)
   */
  const breakSpool = () => {
    renameSync(tmp, `${tmp}.away`);
    writeFileSync(tmp, 'not a directory');
  };
  const repairSpool = () => {
    rmSync(tmp);
    renameSync(`${tmp}.away`, tmp);
  };

  it('an unwritable spool turns /readyz 503 and SMTP to 451 4.3.0; repaired, both recover without a restart', async () => {
    expect(await call(`${admin.url}/healthz`)).toMatchObject({ status: 200, body: { status: 'alive' } });
    expect((await readyz()).status).toBe(200);

    breakSpool();
    await until(async () => (await readyz()).status === 503, 5000, '/readyz 503');
    const r = await readyz();
    expect(r.body).toMatchObject({ ready: false, problems: [{ check: 'spool', code: 451 }] });
    expect((r.body as { problems: { reason: string }[] }).problems[0]?.reason).toMatch(/^spool not writable: .*ENOTDIR/);
    expect(gw.events('health.not-ready').length).toBe(1);

    const c = await RawSmtp.connect(gw.port);
    await c.command('EHLO client.test');
    expect(await c.command('MAIL FROM:<sender@client.test>')).toMatch(/^451 4\.3\.0 /);
    await c.command('QUIT');
    expect(gw.events('smtp.reject').some((l) => l.stage === 'mail' && l.code === 451 && /^not ready: spool not writable/.test(String(l.reason)))).toBe(true);
    const refused = await sendMail(gw.port, { from: 'sender@client.test', to: ['r@dest.test'], raw: testMessage() });
    expect(refused).toMatchObject({ ok: false });
    expect(refused.response).toMatch(/^451 4\.3\.0/);
    expect(gw.gateway.queue.stats().depth).toBe(0);

    repairSpool();
    await until(async () => (await readyz()).status === 200, 5000, '/readyz 200 again');
    expect(gw.events('health.ready').length).toBe(1);
    const accepted = await sendMail(gw.port, { from: 'sender@client.test', to: ['r@dest.test'], raw: testMessage() });
    expect(accepted.ok).toBe(true);
  });

  it('readiness lost between RCPT and DATA: the body is taken and refused with 451, nothing is queued', async () => {
    const before = gw.events('queue.accepted').length;
    const c = await RawSmtp.connect(gw.port);
    await c.command('EHLO client.test');
    expect(await c.command('MAIL FROM:<sender@client.test>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<late@dest.test>')).toMatch(/^250/);
    breakSpool();
    try {
      await until(async () => (await readyz()).status === 503, 5000, '/readyz 503');
      expect(await c.command('DATA')).toMatch(/^354/);
      c.write('Subject: too late\r\n\r\nbody\r\n.\r\n');
      expect(await c.read()).toMatch(/^451 4\.3\.0 /);
      // The session goes on: after repair the next transaction on it is accepted.
    } finally {
      repairSpool();
    }
    await until(async () => (await readyz()).status === 200, 5000, '/readyz 200 again');
    expect(gw.events('queue.accepted').length).toBe(before);
    expect(gw.events('smtp.reject').some((l) => l.stage === 'data' && l.code === 451)).toBe(true);
    expect(await c.command('MAIL FROM:<sender@client.test>')).toMatch(/^250/);
    await c.command('QUIT');
  });
});

describe('a nearly full disk', () => {
  const s = scenario();
  it('answers 452 4.3.1 at MAIL FROM and /readyz names the disk', async () => {
    // More free space than any test machine has: the real statfs numbers say "too little".
    const gw = await s.gateway({ admin: await adminConfig(), health: { diskMinFree: 1024 * 1024 * 1024 * 1024 * 1024 } });
    const admin = await startAdmin(gw);
    try {
      const r = await call(`${admin.url}/readyz`);
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ ready: false, problems: [{ check: 'disk', code: 452 }] });
      expect((r.body as { problems: { reason: string }[] }).problems[0]?.reason).toMatch(/^only .* free on the disk holding .* \(health\.diskMinFree 1048576\.0 GB\)$/);
      const c = await RawSmtp.connect(gw.port);
      await c.command('EHLO client.test');
      expect(await c.command('MAIL FROM:<sender@client.test>')).toMatch(/^452 4\.3\.1 Insufficient system storage/);
      await c.command('QUIT');
      const m = await call(`${admin.url}/metrics`);
      expect(m.text).toMatch(/^postern_ready 0$/m);
    } finally {
      await admin.close();
    }
  });
});

it('the probe really fails for root: a file where the spool directory should be', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-health-'));
  mkdirSync(join(dir, 'spool'));
  const h = new HealthMonitor({ spoolDir: join(dir, 'spool'), dataDir: dir, limits, logger: createLogger('silent') });
  await h.check();
  expect(h.report().ready).toBe(true);
  rmSync(join(dir, 'spool'), { recursive: true });
  writeFileSync(join(dir, 'spool'), '');
  await h.check();
  expect(h.gate()).toMatchObject({ ready: false, code: 451 });
  rmSync(dir, { recursive: true, force: true });
});
