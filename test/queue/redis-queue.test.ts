import { createHash } from 'node:crypto';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { checkRedisDurability } from '../../src/queue/redis/durability.js';
import { connectRedis, openRedisQueue } from '../../src/queue/redis/connect.js';
import { LeaseLostError } from '../../src/queue/redis/lua.js';
import { RedisQueue } from '../../src/queue/redis/queue.js';
import { queueConformance } from './conformance.js';
import { commitBody, DEV_REDIS_URL, deleteKeys, devRedisAvailable, envelope, keysUnder, openTestQueue, readBody, redisSection, testPrefix } from './redis-harness.js';

const available = await devRedisAvailable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A full garbage collection, so the memory test measures what is still referenced. */
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Polls until `check` holds or `ms` passed; returns whether it held (no timing is asserted). */
async function eventually(check: () => boolean | Promise<boolean>, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(20);
  }
  return check();
}

// Skipped only on a developer machine without Redis on 127.0.0.1:6379; under CI=true devRedisAvailable throws (.ci/run starts one).
describe.skipIf(!available)(`Redis queue on ${DEV_REDIS_URL}`, () => {
  queueConformance('redis', async () => {
    const prefix = testPrefix();
    let current = await openTestQueue(DEV_REDIS_URL, prefix);
    return {
      backend: current,
      async restart() {
        await current.close();
        current = await openTestQueue(DEV_REDIS_URL, prefix);
        return current;
      },
      async cleanup() {
        await current.close();
        await deleteKeys(DEV_REDIS_URL, prefix);
        expect(await keysUnder(DEV_REDIS_URL, prefix)).toEqual([]);
      },
    };
  });

  describe('several instances on one prefix', () => {
    let prefix = '';
    let open: RedisQueue[] = [];
    const instance = async (options: Parameters<typeof openTestQueue>[2] = {}) => {
      const q = await openTestQueue(DEV_REDIS_URL, prefix, options);
      open.push(q);
      return q;
    };
    afterEach(async () => {
      for (const q of open) await q.close();
      open = [];
      await deleteKeys(DEV_REDIS_URL, prefix);
    });
    const fresh = () => (prefix = testPrefix());

    it('two instances leasing at the same time never get the same message', async () => {
      fresh();
      const a = await instance();
      const b = await instance();
      const ids = (await Promise.all(Array.from({ length: 120 }, (_, i) => commitBody(i % 2 ? a : b, `m${i}\r\n`)))).map((e) => e.id);
      const got: Record<'a' | 'b', string[]> = { a: [], b: [] };
      // Both pull small batches concurrently until the queue is drained.
      await Promise.all(
        (['a', 'b'] as const).map(async (who) => {
          const q = who === 'a' ? a : b;
          for (let batch = await q.lease(Date.now(), 7); batch.length; batch = await q.lease(Date.now(), 7)) got[who].push(...batch.map((m) => m.envelope.id));
        }),
      );
      expect(got.a.length).toBeGreaterThan(0);
      expect(got.b.length).toBeGreaterThan(0);
      expect(got.a.filter((id) => got.b.includes(id))).toEqual([]);
      expect([...got.a, ...got.b].sort()).toEqual([...ids].sort());
      expect(a.stats()).toMatchObject({ depth: 120 });
    });

    it('a lease whose holder stopped heart-beating expires, the other instance takes it, and the stale holder is fenced off', async () => {
      fresh();
      // A renews far less often than its lease lasts: like a process that froze or died.
      const a = await instance({ leaseTimeMs: 1000, heartbeatMs: 3_600_000 });
      const b = await instance({ leaseTimeMs: 1000, heartbeatMs: 50 });
      const env = await commitBody(a, 'x\r\n');
      const [held] = await a.lease(Date.now(), 1);
      expect(held?.envelope.id).toBe(env.id);
      expect(await b.lease(Date.now(), 10)).toEqual([]);
      let taken: string[] = [];
      expect(await eventually(async () => (taken = (await b.lease(Date.now(), 10)).map((m) => m.envelope.id)).length > 0, 10_000)).toBe(true);
      expect(taken).toEqual([env.id]);

      // A comes back and tries to record its attempt: refused, B's view stays.
      held!.state.recipients[0]!.status = 'delivered';
      await expect(a.save(env.id, held!.state)).rejects.toBeInstanceOf(LeaseLostError);
      await expect(a.remove(env.id)).rejects.toBeInstanceOf(LeaseLostError);
      expect((await b.get(env.id))?.state.recipients[0]?.status).toBe('pending');
      // The new holder's save goes through.
      const later = Date.now() + 60_000;
      await b.save(env.id, { recipients: [{ rcpt: 'b@dest.test', status: 'pending', attempts: 1, nextAttemptAt: later }] });
      expect((await a.get(env.id))?.state.recipients[0]?.attempts).toBe(1);
    });

    it('a lease that is renewed outlives its lease time; close() gives it back to the others', async () => {
      fresh();
      // Lease and beat far enough apart that a slow CI machine still renews in time.
      const a = await instance({ leaseTimeMs: 800, heartbeatMs: 100 });
      const b = await instance({ leaseTimeMs: 800, heartbeatMs: 100 });
      const env = await commitBody(a, 'x\r\n');
      expect(await a.lease(Date.now(), 1)).toHaveLength(1);
      await sleep(2500); // three lease times
      expect(await b.lease(Date.now(), 10)).toEqual([]);
      expect(b.stats().leased).toBe(1);
      await a.close();
      open = open.filter((q) => q !== a);
      expect((await b.lease(Date.now(), 10)).map((m) => m.envelope.id)).toEqual([env.id]);
    });

    it('a message leased by one instance cannot be removed or saved by another that holds no lease', async () => {
      fresh();
      const a = await instance();
      const b = await instance();
      const env = await commitBody(a, 'x\r\n');
      const [m] = await a.lease(Date.now(), 1);
      await expect(b.remove(env.id)).rejects.toBeInstanceOf(LeaseLostError);
      await expect(b.save(env.id, m!.state)).rejects.toBeInstanceOf(LeaseLostError);
      expect(await b.get(env.id)).toBeDefined();
      await a.remove(env.id);
      expect(await b.get(env.id)).toBeUndefined();
    });

    it('a commit on one instance wakes the others (pub/sub), and they see it due', async () => {
      fresh();
      const a = await instance();
      const b = await instance();
      let wakes = 0;
      b.onWake(() => wakes++);
      const env = await commitBody(a, 'x\r\n');
      expect(await eventually(() => wakes > 0)).toBe(true);
      expect((await b.lease(Date.now(), 10)).map((m) => m.envelope.id)).toEqual([env.id]);
    });

    it('cleans the temp body of a dead instance at open(), never one of a live instance', async () => {
      fresh();
      const writerOwner = await instance({ leaseTimeMs: 1500, heartbeatMs: 3_600_000 });
      const w = await writerOwner.receive(envelope());
      await w.write(Buffer.alloc(300 * 1024, 0x61)); // more than one APPEND batch: the temp key exists
      const tmpKeys = async () => (await keysUnder(DEV_REDIS_URL, prefix)).filter((k) => k.includes(':tmp:'));
      expect(await tmpKeys()).toHaveLength(1);
      const live = await instance();
      expect(await tmpKeys()).toHaveLength(1); // its owner is alive: kept
      expect(live.stats().depth).toBe(0);
      await sleep(1600); // the owner's liveness key expired: it stopped heart-beating
      const next = await openTestQueue(DEV_REDIS_URL, prefix);
      open.push(next);
      expect(await tmpKeys()).toEqual([]);
      // The owner, should it come back, cannot commit a body that is gone: its client gets 4xx.
      await expect(w.commit()).rejects.toThrow(/bytes in Redis/);
      await w.abort();
      expect(await next.list()).toEqual([]);
    });

    it('the heartbeat of a live instance removes the temp body of one killed mid-DATA, and stale records: the registry does not grow', async () => {
      fresh();
      // Opened, then silent: like a process killed with -9 in the middle of DATA.
      const killed = await instance({ leaseTimeMs: 1000, heartbeatMs: 3_600_000 });
      const w = await killed.receive(envelope());
      await w.write(Buffer.alloc(300 * 1024, 0x61)); // more than one APPEND batch: the temp key exists
      const redis = new Redis(DEV_REDIS_URL);
      try {
        const registry = () => redis.smembers(`${prefix}q:tmps`);
        expect(await registry()).toHaveLength(1);
        const survivor = await instance({ leaseTimeMs: 1000, heartbeatMs: 50 });
        // A record whose key is gone (expired, or its undo was lost) while its owner lives on.
        await redis.sadd(`${prefix}q:tmps`, `${survivor.instanceId}:no-such-body`);
        // No open() anywhere: the survivor's heartbeats alone clean up once the killed one's liveness key expires.
        const tmpKeys = async () => (await keysUnder(DEV_REDIS_URL, prefix)).filter((k) => k.includes(':tmp:'));
        expect(await eventually(async () => (await registry()).length === 0 && (await tmpKeys()).length === 0, 10_000)).toBe(true);

        // The survivor's own bodies being received are left alone by its beats and the others'.
        const own = await survivor.receive(envelope());
        await own.write(Buffer.alloc(300 * 1024, 0x62));
        await sleep(300);
        expect(await registry()).toEqual([`${survivor.instanceId}:${own.id}`]);
        await own.write(Buffer.from('\r\n'));
        expect((await own.commit()).size).toBe(300 * 1024 + 2);
        expect(await registry()).toEqual([]);
      } finally {
        redis.disconnect();
        await w.abort().catch(() => undefined);
      }
    });

    it('a commit refused by Redis (the id is taken) is undone without touching the message that has the id', async () => {
      fresh();
      const q = await instance();
      const first = await commitBody(q, 'first\r\n');
      const w = await q.receive(envelope({ id: first.id }));
      await w.write(Buffer.alloc(300 * 1024, 0x63));
      await expect(w.commit()).rejects.toThrow(/already taken/);
      await w.abort();
      expect((await readBody(q, first.id)).toString()).toBe('first\r\n');
      expect((await q.list()).map((m) => m.envelope.id)).toEqual([first.id]);
      expect((await keysUnder(DEV_REDIS_URL, prefix)).filter((k) => k.includes(':tmp'))).toEqual([]);
    });

    it('open() reports the temp bodies it cleaned', async () => {
      fresh();
      const a = await instance();
      const w = await a.receive(envelope());
      await w.write(Buffer.alloc(300 * 1024, 0x62));
      await a.close(); // a closed instance is no longer alive: its unfinished bodies are orphans
      open = [];
      const b = new RedisQueue(await connectRedis(redisSection(DEV_REDIS_URL, prefix)), { keyPrefix: prefix, ownsClient: true });
      open.push(b);
      expect(await b.open()).toEqual({ recovered: 0, cleaned: 1 });
      expect((await keysUnder(DEV_REDIS_URL, prefix)).filter((k) => k.includes(':tmp'))).toEqual([]);
    });
  });

  describe('bodies', () => {
    let prefix = '';
    afterEach(() => deleteKeys(DEV_REDIS_URL, prefix));

    it('streams 25 MB messages in and out without holding them in memory', async () => {
      prefix = testPrefix();
      const q = await openTestQueue(DEV_REDIS_URL, prefix);
      const size = 25 * 1024 * 1024;
      const chunk = 64 * 1024;
      // What is still referenced halfway through a body, after a full GC: a backend that
      // gathered the body (to send it or to hand it out) would hold 12.5 MB or more here.
      const retained: number[] = [];
      const measureRetained = async () => {
        // Backing stores are freed by a background sweeper: collect, let it run, collect again.
        gc();
        await sleep(20);
        gc();
        retained.push(process.memoryUsage().arrayBuffers);
      };
      gc();
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));
      try {
        for (let n = 0; n < 3; n++) {
          const w = await q.receive(envelope());
          const sent = createHash('sha256');
          for (let offset = 0; offset < size; offset += chunk) {
            const part = Buffer.alloc(chunk, (offset / chunk + n) % 251);
            sent.update(part);
            await w.write(part);
            if (offset === size / 2) await measureRetained();
            sample();
          }
          const env = await w.commit();
          expect(env.size).toBe(size);
          const got = createHash('sha256');
          let bytes = 0;
          for await (const c of await q.openBody(env.id)) {
            got.update(c as Buffer);
            bytes += (c as Buffer).length;
            if (bytes === size / 2) await measureRetained();
            sample();
          }
          expect(bytes).toBe(size);
          expect(got.digest('hex')).toBe(sent.digest('hex'));
          await q.remove(env.id);
        }
      } finally {
        await q.close();
      }
      expect(retained).toHaveLength(6);
      for (const r of retained) expect(r).toBeLessThan(4 * 1024 * 1024);
      // Loose: 75 MB went in and out; garbage awaiting collection makes RSS noisy, but it
      // must not grow by a message's size for every message.
      expect(peak - baseline).toBeLessThan(75 * 1024 * 1024);
    }, 120_000);
  });

  describe('start-up persistence check on the development Redis', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });

    it('reports the default dev Redis (no AOF) as unsafe, naming the setting', async () => {
      const redis = await connectRedis(redisSection(DEV_REDIS_URL, 'unused:'));
      try {
        const verdict = await checkRedisDurability(redis);
        expect(verdict).toMatchObject({ ok: false, status: 'unsafe', settings: { appendonly: 'no' } });
        expect(verdict.problems.join('\n')).toMatch(/AOF is off/);
        expect(verdict.problems.join('\n')).toMatch(/waitReplicas is 0/);
        const waiting = await checkRedisDurability(redis, { waitReplicas: 1 });
        expect(waiting.problems.join('\n')).toMatch(/waitReplicas is 1 but 0 replicas/);
      } finally {
        redis.disconnect();
      }
    });

    it('durability: refuse stops the start; warn logs the problems and opens the queue', async () => {
      const prefix = testPrefix();
      const section = redisSection(DEV_REDIS_URL, prefix);
      await expect(openRedisQueue({ redis: { ...section, durability: 'refuse' } }, logger)).rejects.toThrow(/redis.durability: refuse[\s\S]*AOF is off/);
      const q = await openRedisQueue({ redis: section }, logger);
      try {
        expect(lines.find((l) => l.event === 'queue.redis-durability')).toMatchObject({ level: 40, status: 'unsafe' });
        await q.open();
        const env = await commitBody(q, 'hello\r\n');
        expect((await readBody(q, env.id)).toString()).toBe('hello\r\n');
      } finally {
        await q.close();
        await deleteKeys(DEV_REDIS_URL, prefix);
      }
    });

    it('a commit that the configured replicas do not acknowledge fails and leaves nothing behind', async () => {
      const prefix = testPrefix();
      const q = await openTestQueue(DEV_REDIS_URL, prefix, { waitReplicas: 1, waitTimeoutMs: 50 });
      try {
        const w = await q.receive(envelope());
        await w.write(Buffer.from('x\r\n'));
        await expect(w.commit()).rejects.toThrow(/0 of 1 Redis replicas/);
        await w.abort();
        expect(await q.get(w.id)).toBeUndefined();
        expect(await q.list()).toEqual([]);
        expect((await keysUnder(DEV_REDIS_URL, prefix)).filter((k) => /:(msg|body|tmp):/.test(k))).toEqual([]);
      } finally {
        await q.close();
        await deleteKeys(DEV_REDIS_URL, prefix);
      }
    });
  });
});
