import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRedisDurability } from '../../src/queue/redis/durability.js';
import { connectRedis, openRedisQueue, redisClientOptions } from '../../src/queue/redis/connect.js';
import { RedisQueue } from '../../src/queue/redis/queue.js';
import { createTestCa } from '../helpers/pki.js';
import { findProgram } from '../helpers/programs.js';
import { commitBody, envelope, openTestQueue, readBody, redisSection, testPrefix } from './redis-harness.js';
import { freePort, startRedisServer, type RedisServer, type ServerAccess } from './redis-server.js';

const redisServer = findProgram('redis-server');
const SAFE = ['--appendonly', 'yes', '--appendfsync', 'always', '--save', ''];

// Skipped only on a developer machine without a redis-server binary; under CI=true findProgram throws.
describe.skipIf(!redisServer)('Redis durability: a redis-server of our own, killed with SIGKILL', () => {
  const dirs: string[] = [];
  const servers: RedisServer[] = [];
  const start = async (port: number, dir: string, args: string[], access: ServerAccess = {}) => {
    const s = await startRedisServer(redisServer as string, port, ['--dir', dir, ...args], access);
    servers.push(s);
    return s;
  };
  const dataDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'postern-redis-'));
    dirs.push(d);
    return d;
  };
  afterAll(async () => {
    for (const s of servers) await s.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('finds every committed message (and saved progress) after kill -9 and restart; the check calls it safe', async () => {
    const port = await freePort();
    const dir = dataDir();
    const prefix = testPrefix();
    let server = await start(port, dir, SAFE);

    const redis = await connectRedis(redisSection(server.url, prefix));
    const verdict = await checkRedisDurability(redis);
    redis.disconnect();
    expect(verdict).toEqual({ ok: true, status: 'ok', problems: [], settings: { appendonly: 'yes', appendfsync: 'always', maxmemoryPolicy: 'noeviction', connectedReplicas: 0 } });

    const q = await openTestQueue(server.url, prefix);
    const bodies = new Map<string, string>();
    const envs = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const body = `Subject: ${i}\r\n\r\n${'x'.repeat(i * 7919)}\r\n`;
        const env = await commitBody(q, body);
        bodies.set(env.id, body);
        return env;
      }),
    );
    // One message has recorded progress: a deferred recipient.
    const [leased] = await q.lease(Date.now(), 1);
    const later = Date.now() + 3_600_000;
    leased!.state.recipients[0]!.attempts = 1;
    leased!.state.recipients[0]!.nextAttemptAt = later;
    leased!.state.recipients[0]!.lastResponse = '451 4.4.1 try later';
    await q.save(leased!.envelope.id, leased!.state);

    // Everything above was acknowledged; the server dies without a chance to flush more.
    await server.kill('SIGKILL');
    await q.close().catch(() => undefined);
    server = await start(port, dir, SAFE);

    const q2 = await openTestQueue(server.url, prefix);
    try {
      const all = await q2.list();
      expect(all.map((m) => m.envelope.id).sort()).toEqual(envs.map((e) => e.id).sort());
      for (const [id, body] of bodies) expect((await readBody(q2, id)).toString()).toBe(body);
      const saved = await q2.get(leased!.envelope.id);
      expect(saved?.state.recipients[0]).toMatchObject({ attempts: 1, nextAttemptAt: later, lastResponse: '451 4.4.1 try later' });
      // All but the deferred one are due at once, and only once.
      const due = await q2.lease(Date.now(), 100);
      expect(due).toHaveLength(39);
      expect(due.map((m) => m.envelope.id)).not.toContain(leased!.envelope.id);
    } finally {
      await q2.close();
    }
  });

  it('while Redis is down commits fail at once (4xx for the client), and the same queue resumes when it is back', async () => {
    const port = await freePort();
    const dir = dataDir();
    const prefix = testPrefix();
    let server = await start(port, dir, SAFE);
    const q = await openTestQueue(server.url, prefix);
    try {
      const before = await commitBody(q, 'before\r\n');
      await server.kill('SIGKILL');
      // Neither queued for later nor retried: the error reaches ingress, which answers 451.
      const w = await q.receive(envelope());
      await expect(w.write(Buffer.alloc(300 * 1024, 0x61)).then(() => w.commit())).rejects.toThrow();
      await w.abort().catch(() => undefined);
      await expect(q.lease(Date.now(), 10)).rejects.toThrow();

      server = await start(port, dir, SAFE);
      // The client reconnects by itself; no new queue, no restart.
      let after: Awaited<ReturnType<typeof commitBody>> | undefined;
      for (let i = 0; i < 200 && !after; i++) {
        after = await commitBody(q, 'after\r\n').catch(() => undefined);
        if (!after) await new Promise((r) => setTimeout(r, 50));
      }
      expect(after).toBeDefined();
      const leased = (await q.lease(Date.now(), 10)).map((m) => m.envelope.id).sort();
      expect(leased).toEqual([before.id, after!.id].sort());
      expect((await readBody(q, before.id)).toString()).toBe('before\r\n');
    } finally {
      await q.close();
    }
  });

  it('after Redis was killed and is back, every instance is subscribed to the wake channel again, and one instance wakes another', async () => {
    const port = await freePort();
    const dir = dataDir();
    const prefix = testPrefix();
    let server = await start(port, dir, SAFE);
    const a = await openTestQueue(server.url, prefix);
    const b = await openTestQueue(server.url, prefix);
    const probe = await connectRedis(redisSection(server.url, 'unused:'));
    const subscribers = async () => {
      const reply = (await probe.pubsub('NUMSUB', `${prefix}q:wake`).catch(() => [])) as [string, number] | [];
      return Number(reply[1] ?? 0);
    };
    try {
      expect(await subscribers()).toBe(2);
      // Two kill-and-restart rounds: the second finds out whether the first re-subscription
      // left the connection able to do it again.
      for (let round = 0; round < 2; round++) {
        await server.kill('SIGKILL');
        server = await start(port, dir, SAFE);
        let count = 0;
        for (let i = 0; i < 200 && count < 2; i++) {
          count = await subscribers();
          if (count < 2) await new Promise((r) => setTimeout(r, 50));
        }
        expect(count).toBe(2);
      }
      // The subscription carries messages: a commit on one instance wakes the other.
      let wakes = 0;
      b.onWake(() => wakes++);
      let committed = false;
      for (let i = 0; i < 200 && !committed; i++) {
        committed = await commitBody(a, 'wake\r\n').then(() => true, () => false);
        if (!committed) await new Promise((r) => setTimeout(r, 50));
      }
      for (let i = 0; i < 100 && wakes === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(wakes).toBeGreaterThan(0);
    } finally {
      probe.disconnect();
      await a.close();
      await b.close();
    }
  });

  it('says unsafe for everysec, and unknown when CONFIG is renamed away', async () => {
    const everysec = await start(await freePort(), dataDir(), ['--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '']);
    const hidden = await start(await freePort(), dataDir(), ['--rename-command', 'CONFIG', '', ...SAFE]);
    const verdictOf = async (url: string) => {
      const redis = await connectRedis(redisSection(url, 'unused:'));
      try {
        return await checkRedisDurability(redis);
      } finally {
        redis.disconnect();
      }
    };
    const a = await verdictOf(everysec.url);
    expect(a).toMatchObject({ ok: false, status: 'unsafe' });
    expect(a.problems.join('\n')).toMatch(/appendfsync is everysec/);
    const b = await verdictOf(hidden.url);
    // INFO still tells the eviction policy: the default, noeviction, adds no problem.
    expect(b).toMatchObject({ ok: false, status: 'unknown', settings: { appendonly: 'yes', maxmemoryPolicy: 'noeviction' } });
    expect(b.problems).toEqual([expect.stringMatching(/CONFIG GET is disabled.*AOF is on, its fsync policy unknown/)]);
  });

  it('says unsafe when Redis may evict (volatile-lru as on ElastiCache, allkeys-lru), even with a safe AOF; refuse stops the start', async () => {
    const evicting = async (policy: string) => {
      const server = await start(await freePort(), dataDir(), [...SAFE, '--maxmemory', '64mb', '--maxmemory-policy', policy]);
      const redis = await connectRedis(redisSection(server.url, 'unused:'));
      try {
        return { url: server.url, verdict: await checkRedisDurability(redis) };
      } finally {
        redis.disconnect();
      }
    };
    const volatile = await evicting('volatile-lru');
    expect(volatile.verdict).toMatchObject({ ok: false, status: 'unsafe', settings: { appendonly: 'yes', appendfsync: 'always', maxmemoryPolicy: 'volatile-lru' } });
    expect(volatile.verdict.problems).toEqual([expect.stringMatching(/^maxmemory-policy is volatile-lru: .*evicts keys with an expiry: portal messages.*set maxmemory-policy noeviction/)]);
    const allkeys = await evicting('allkeys-lru');
    expect(allkeys.verdict.problems).toEqual([expect.stringMatching(/^maxmemory-policy is allkeys-lru: .*evicts any key, queued messages included/)]);

    const logger = pino({ level: 'silent' });
    const section = { ...redisSection(volatile.url, testPrefix()), durability: 'refuse' as const };
    await expect(openRedisQueue({ redis: section }, logger)).rejects.toThrow(/redis\.durability: refuse[\s\S]*maxmemory-policy is volatile-lru/);
  });

  it('connects over TLS (rediss://, the CA from redis.tls.ca) with a password, and refuses a wrong CA or password', async () => {
    const ca = createTestCa('Postern Redis Test CA');
    const other = createTestCa('Someone Else');
    const dir = dataDir();
    const port = await freePort();
    const password = 'pa:ss/w@rd';
    const server = await start(port, dir, SAFE, { tls: { ...ca.issue(['127.0.0.1']), ca: ca.cert, dir }, password });
    expect(server.url.startsWith('rediss://')).toBe(true);
    const prefix = testPrefix();
    const section = { ...redisSection(server.url, prefix), tls: { ca: ca.caFile } };
    const q = new RedisQueue(await connectRedis(section), { keyPrefix: prefix, ownsClient: true });
    await q.open();
    try {
      const env = await commitBody(q, 'over tls\r\n');
      expect((await readBody(q, env.id)).toString()).toBe('over tls\r\n');
    } finally {
      await q.close();
    }
    await expect(connectRedis({ ...section, tls: { ca: other.caFile } })).rejects.toThrow(/cannot reach Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1.*certificate/);
    const wrongPassword = await connectRedis({ ...section, url: server.url.replace(encodeURIComponent(password), 'nope') }).catch((err: Error) => err);
    expect(wrongPassword).toBeInstanceOf(Error);
    expect(String(wrongPassword)).toMatch(/WRONGPASS/);
    expect(String(wrongPassword)).not.toContain(password);
    expect(() => redisClientOptions({ ...section, url: `redis://127.0.0.1:${port}` })).toThrow(/rediss:\/\//);
  });
});
