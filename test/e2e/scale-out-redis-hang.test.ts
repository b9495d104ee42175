import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findProgram } from '../helpers/programs.js';
import { scenario } from '../helpers/scenario.js';
import { RawSmtp, testMessage } from '../helpers/smtp-client.js';
import { testPrefix } from '../queue/redis-harness.js';
import { freePort, startRedisServer, type RedisServer } from '../queue/redis-server.js';

const redisServer = findProgram('redis-server');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long each SMTP reply is waited for: far beyond what a refusal takes, short of forever. */
const REPLY_WAIT_MS = 30_000;

/**
 * One message over a fresh connection, by hand so that every reply has a time limit: the
 * last reply, or "(no reply)" when the gateway kept the client waiting.
 */
async function transaction(port: number, marker: string): Promise<string> {
  const c = await RawSmtp.connect(port);
  try {
    for (const line of ['EHLO client.test', 'MAIL FROM:<dr@client.test>', 'RCPT TO:<pat@dest.test>', 'DATA']) {
      c.write(`${line}\r\n`);
      const reply = await c.read(REPLY_WAIT_MS);
      if (!/^(250|354)[ -]/.test(reply)) return reply;
    }
    c.write(Buffer.concat([testMessage({ subject: marker }), Buffer.from('.\r\n')]));
    return await c.read(REPLY_WAIT_MS);
  } finally {
    c.close();
  }
}

async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !check()) await sleep(100);
  return check();
}

// Skipped only on a developer machine without a redis-server binary; under CI=true findProgram throws.
describe.skipIf(!redisServer)('scale-out: a Redis that hangs (SIGSTOP) and comes back (SIGCONT)', () => {
  const s = scenario();
  const dir = mkdtempSync(join(tmpdir(), 'postern-redis-hang-'));
  let redis: RedisServer | undefined;
  afterAll(async () => {
    redis?.process.kill('SIGCONT');
    await redis?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('SMTP answers 451 instead of hanging, readiness says not ready, and everything resumes after SIGCONT', async () => {
    redis = await startRedisServer(redisServer as string, await freePort(), ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '']);
    const mx = await s.mx();
    const gw = await s.gateway({
      queue: { backend: 'redis' },
      redis: { url: redis.url, keyPrefix: testPrefix(), commandTimeout: '1s' },
      portal: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
      archive: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
      delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } },
    });
    const health = gw.gateway.operations.health;
    expect(await transaction(gw.port, 'BEFORE-HANG')).toMatch(/^250 /);
    await mx.waitFor(1);

    redis.process.kill('SIGSTOP');
    try {
      // Sent at once, while readiness still remembers the last good PING: the session gets
      // as far as the commit, which Redis never answers.
      expect(await transaction(gw.port, 'DURING-HANG')).toMatch(/^451 4\.3\.0 /);
      expect(await eventually(() => !health.report().ready, 10_000)).toBe(true);
      expect(health.report().problems.map((p) => p.check)).toContain('redis');
      // Now refused before DATA: the gate knows.
      expect(await transaction(gw.port, 'REFUSED-AT-MAIL')).toMatch(/^451 /);
    } finally {
      redis.process.kill('SIGCONT');
    }

    expect(await eventually(() => health.report().ready, 15_000)).toBe(true);
    expect(await transaction(gw.port, 'AFTER-HANG')).toMatch(/^250 /);
    await mx.waitFor(2);
    // What was refused was undone, not delivered later behind the client's back.
    await sleep(1500);
    const subjects = mx.messages.map((m) => /^Subject: (.*)$/m.exec(m.raw.toString())?.[1]?.trim());
    expect(subjects.sort()).toEqual(['AFTER-HANG', 'BEFORE-HANG']);
  }, 120_000);
});
