import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../src/queue/redis/keys.js';
import { until } from '../api/admin-helpers.js';
import { startChildGateway, waitForLog, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { findProgram } from '../helpers/programs.js';
import { sendNumbered as sender, testIdsOf, type LoadTally as Tally } from '../helpers/load-sender.js';
import { DEV_REDIS_URL, devRedisAvailable, testPrefix } from '../queue/redis-harness.js';
import { freePort, startRedisServer } from '../queue/redis-server.js';
import { scaleOutSuite } from './scale-out-suite.js';

const redisUp = await devRedisAvailable();
const redisServer = findProgram('redis-server');
const key = () => randomBytes(32).toString('base64');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One instance's config: one Redis queue, the same master keys, one receiving MX. One
 * process per instance (workers: 1), so an instance is one lease holder, named by its pid.
 */
function instanceConfig(dataDir: string, redis: { url: string; prefix: string; leaseTime: string; commandTimeout: string }, mxPort: number, keys: { portal: string; archive: string }, concurrency = 10) {
  return testConfigInput(dataDir, {
    workers: 1,
    log: { level: 'info' },
    queue: { backend: 'redis' },
    redis: { url: redis.url, keyPrefix: redis.prefix, leaseTime: redis.leaseTime, commandTimeout: redis.commandTimeout },
    portal: { masterKeys: [{ id: 'k1', key: keys.portal }] },
    archive: { masterKeys: [{ id: 'k1', key: keys.archive }] },
    delivery: { concurrency, routes: { '*': { nexthop: `127.0.0.1:${mxPort}`, tls: 'none' } }, retry: { initialDelay: '300ms', maxDelay: '1s' } },
  });
}

const testIdsAt = (mx: TestMx) => testIdsOf(mx.messages);

/** The queue id Postern gave a message, from the Received header it prepended at ingress. */
const queueIdOf = (raw: Buffer) => /\(Postern\) with \S+ id ([^\s;]+)/.exec(raw.toString())?.[1] ?? '';

async function allDelivered(mx: TestMx, acked: Set<string>, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let missing = [...acked];
  while (Date.now() < deadline) {
    const seen = new Set(testIdsAt(mx));
    missing = [...acked].filter((id) => !seen.has(id));
    if (!missing.length) break;
    await sleep(200);
  }
  return missing;
}

/**
 * The queue ids leased to one process, read from Redis: the lease set, and each leased
 * message's owner (an instance id is "<host>.<pid>.<random>"). Read right after the
 * process died, before its leases run out, this is what it had in flight.
 */
async function leasedBy(url: string, prefix: string, pid: number): Promise<string[]> {
  const keys = new RedisKeys(prefix);
  const redis = new Redis(url, { maxRetriesPerRequest: 0 });
  try {
    const ids = await redis.zrange(keys.leases, '0', '-1');
    const owners = await Promise.all(ids.map((id) => redis.hget(keys.msg(id), 'owner')));
    const ofPid = new RegExp(`\\.${pid}\\.[0-9a-f]+$`);
    return ids.filter((_, i) => ofPid.test(owners[i] ?? ''));
  } finally {
    redis.disconnect();
  }
}

// Skipped only on a developer machine without Redis on 127.0.0.1:6379; under CI=true devRedisAvailable throws (.ci/run starts one).
describe.skipIf(!redisUp)('scale-out: two instances on one Redis', () => {
  const suite = scaleOutSuite('scale');
  const { dir, prefix, gateways } = suite;

  it('2,000 messages to both, one killed with -9 mid-load: every acknowledged message is delivered; only deliveries the dead one had leased are repeated', async () => {
    const TOTAL = 2000;
    const mx = (suite.mx = await new TestMx().start());
    const keys = { portal: key(), archive: key() };
    // Long enough that the dead instance's leases can still be read after the kill.
    const redis = { url: DEV_REDIS_URL, prefix, leaseTime: '6s', commandTimeout: '3s' };
    const config = (name: string) => instanceConfig(join(dir, name), redis, mx.port, keys, 50);
    for (const name of ['a', 'b']) mkdirSync(join(dir, name), { recursive: true });
    const a = await startChildGateway(join(dir, 'a'), config('a'));
    const b = await startChildGateway(join(dir, 'b'), config('b'));
    gateways.push(a, b);
    const tally: Tally = { acked: new Set(), refused: [] };
    let issued = 0;
    let inFlightAtKill: Promise<string[]> | undefined;
    const next = () => (issued >= TOTAL ? undefined : issued++);
    const onAck = () => {
      if (!inFlightAtKill && tally.acked.size >= 700) {
        a.killAll();
        inFlightAtKill = a.exited.then(() => leasedBy(DEV_REDIS_URL, prefix, a.proc.pid as number));
      }
    };
    await Promise.all([...Array.from({ length: 10 }, () => sender(a.port, next, tally, onAck)), ...Array.from({ length: 10 }, () => sender(b.port, next, tally, onAck))]);
    expect((await a.exited).signal).toBe('SIGKILL');
    const inFlight = new Set(await inFlightAtKill);
    expect(inFlight.size, 'A held no lease when it was killed: the test shows nothing').toBeGreaterThan(0);
    expect(tally.acked.size).toBeGreaterThan(1500);

    // B takes over A's deliveries once their leases run out.
    const missing = await allDelivered(mx, tally.acked, 90_000);
    expect(missing).toEqual([]);
    await sleep(1000); // a repeat still on its way would count too

    const times = new Map<string, number>();
    for (const m of mx.messages) times.set(queueIdOf(m.raw), (times.get(queueIdOf(m.raw)) ?? 0) + 1);
    expect(times.has(''), 'a delivered message without Postern\'s Received header').toBe(false);
    const repeated = [...times].filter(([, n]) => n > 1);
    // A message delivered three times is two duplicates.
    const duplicates = repeated.reduce((sum, [, n]) => sum + n - 1, 0);
    // At least once: only what A had leased when it died is delivered again, and at most once more each.
    expect(repeated.map(([id]) => id).filter((id) => !inFlight.has(id))).toEqual([]);
    expect(duplicates).toBeLessThanOrEqual(inFlight.size);
    // B delivered work A had leased: the leases ran out and were taken over.
    const takenOver = b.logs.filter((l) => l.event === 'delivery.sent' && inFlight.has(l.queueId as string));
    expect(takenOver.length).toBeGreaterThan(0);
    console.info(`scale-out kill test: ${tally.acked.size} acknowledged, ${times.size} distinct delivered, A had ${inFlight.size} leased at the kill, B delivered ${new Set(takenOver.map((l) => l.queueId)).size} of them, ${duplicates} duplicate(s)`);
  }, 240_000);
});

// Skipped only on a developer machine without a redis-server binary; under CI=true findProgram throws.
describe.skipIf(!redisServer)('scale-out: Redis stopped for 30 s during load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-redis-outage-'));
  let gw: ChildGateway | undefined;
  let mx: TestMx | undefined;
  /** Every redis-server this test started, stopped whatever happens (none is left behind). */
  const servers: { kill(signal?: NodeJS.Signals): Promise<void> }[] = [];
  afterAll(async () => {
    gw?.killAll();
    await mx?.stop();
    for (const r of servers) await r.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('no 250 while it is down (451 4.3.0, /readyz 503) and no delivery attempt; once it is back, what was queued is delivered within seconds without new mail', async () => {
    const OUTAGE_MS = 30_000;
    const COMMAND_TIMEOUT_MS = 2000;
    const port = await freePort();
    const args = ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''];
    let redis = await startRedisServer(redisServer as string, port, args);
    servers.push(redis);
    // The MX defers everything until Redis is about to come back: what was acknowledged
    // before the outage is still queued in Redis through it, so "nothing lost" is about the
    // outage, and the gateway keeps trying (a retry a second at most) until deliveries pause.
    let mxDefers = true;
    mx = await new TestMx({ dataReply: () => (mxDefers ? [451, '4.3.2 Try again later (test MX)'] : undefined) }).start();
    const attempts = () => mx!.commands.filter((c) => c.command === 'MAIL FROM').length;
    mkdirSync(join(dir, 'gw'), { recursive: true });
    const redisSettings = { url: redis.url, prefix: testPrefix(), leaseTime: '3s', commandTimeout: `${COMMAND_TIMEOUT_MS}ms` };
    const g = (gw = await startChildGateway(join(dir, 'gw'), instanceConfig(join(dir, 'gw', 'data'), redisSettings, mx.port, { portal: key(), archive: key() })));
    const admin = (await waitForLog(g, (l) => l.event === 'admin.listen')).port as number;
    const readyz = () => fetch(`http://127.0.0.1:${admin}/readyz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 0);
    /** Polls /readyz until it answers `want`; a timeout lists what it said meanwhile (0: no answer). */
    const readyzBecomes = async (want: number, timeoutMs: number) => {
      const seen: number[] = [];
      const answers = async () => (seen.push(await readyz()), seen.at(-1) === want);
      await until(answers, timeoutMs, `/readyz ${want}`).catch((err: Error) => {
        // 0s only: say whether the gateway is still there, and what it last said.
        const ended = g.exit();
        const last = g.logs.slice(-8).map((l) => JSON.stringify(l)).join('\n');
        throw new Error(`${err.message}; it said ${seen.join(', ')}; gateway ${ended ? `exited (${JSON.stringify(ended)})` : 'running'}; stderr: ${g.stderr().slice(-2000)}\nlast log lines:\n${last}`);
      });
    };
    /** The gateway's delivery outcomes (sent, deferred, bounced) logged from `since` on. */
    const outcomesSince = (since: number) => g.logs.filter((l) => /^delivery\.(sent|deferred|bounced)$/.test(l.event ?? '') && Date.parse(l.time as string) >= since);
    expect(await readyz()).toBe(200);

    const tally: Tally = { acked: new Set(), refused: [] };
    let n = 0;
    let stop = false;
    // A steady trickle of new sessions, as a relay sends: each message on its own connection.
    const load = (async () => {
      while (!stop) {
        let used = false;
        const once = () => (used || stop ? undefined : ((used = true), n++));
        await sender(g.port, once, tally).catch(() => undefined);
        await sleep(50);
      }
    })();
    const stopLoad = async () => {
      stop = true;
      await load;
    };
    try {
      await until(() => tally.acked.size >= 10, 30_000, 'ten messages acknowledged before the outage');
      // Deliveries are being attempted: the count the outage must freeze is moving.
      const attemptsBefore = attempts();
      await until(() => attempts() >= attemptsBefore + 5, 15_000, 'delivery attempts (deferred by the MX) before the outage');

      await redis.kill('SIGTERM');
      const stoppedAt = Date.now();
      // A 250 already on its way when Redis stopped (stored before it did) may still land.
      await sleep(1000);
      const ackedWhenDown = tally.acked.size;
      const refusedWhenDown = tally.refused.length;
      // Polled for as long as the outage lasts: a loaded machine may answer slowly.
      await readyzBecomes(503, OUTAGE_MS - 2000);
      // An attempt under way when Redis stopped ends within a command timeout; after that
      // nothing goes to the MX until Redis is back.
      const pausedFrom = stoppedAt + COMMAND_TIMEOUT_MS + 1000;
      await sleep(Math.max(0, pausedFrom - Date.now()));
      const attemptsWhenPaused = attempts();
      // The outage lasts OUTAGE_MS, and then until the worker's lease backoff (logged with
      // each failed lease, doubling up to 30 s) has at least 15 s left: Redis comes back
      // well before that timer would let the worker try again, so only the reconnect can
      // start the deliveries in time for the check below.
      const backoffEndsAt = () => {
        const failed = g.logs.filter((l) => l.event === 'delivery.error' && typeof l.retryInMs === 'number' && /^queue lease failed/.test(l.msg ?? '')).at(-1);
        return failed ? Date.parse(failed.time as string) + (failed.retryInMs as number) : 0;
      };
      await until(() => Date.now() >= stoppedAt + OUTAGE_MS && backoffEndsAt() - Date.now() >= 15_000, OUTAGE_MS + 35_000, 'the outage length, with 15 s of lease backoff left');
      expect(tally.acked.size, 'a 250 while Redis was down').toBe(ackedWhenDown);
      expect(tally.refused.length).toBeGreaterThan(refusedWhenDown);
      expect(attempts() - attemptsWhenPaused, 'MAIL FROM at the MX while Redis was down').toBe(0);
      expect(outcomesSince(pausedFrom), 'deliveries settled while Redis was down').toEqual([]);
      expect(mx.messages).toEqual([]); // everything acknowledged is still queued

      // No new mail from here on: nothing but the reconnect can start the deliveries.
      await stopLoad();
      mxDefers = false;
      const acked = new Set(tally.acked);
      redis = await startRedisServer(redisServer as string, port, args);
      servers.push(redis);
      const upAt = Date.now();
      // The client reconnects within 2 s (its retry interval); then the worker is woken.
      expect(await allDelivered(mx, acked, 10_000), 'queued mail not delivered within 10 s of Redis being back').toEqual([]);
      expect(Date.now(), 'delivered only when the lease backoff ran out: the reconnect did not wake the worker').toBeLessThan(backoffEndsAt());
      console.info(`Redis outage test: ${acked.size} queued, all delivered ${Date.now() - upAt} ms after Redis was back; outage ${upAt - stoppedAt} ms`);
      await readyzBecomes(200, 30_000);
    } finally {
      await stopLoad();
    }
    expect(tally.refused.length).toBeGreaterThan(0);
    expect(tally.refused.filter((r) => !/^451 4\.3\.0 /.test(r)), 'refusals other than 451 4.3.0').toEqual([]);
    // And new mail is taken again.
    const after: Tally = { acked: new Set(), refused: [] };
    let once = false;
    await sender(g.port, () => (once ? undefined : ((once = true), n++)), after);
    expect(after.refused).toEqual([]);
    expect(await allDelivered(mx, after.acked, 30_000)).toEqual([]);
    expect(after.acked.size).toBe(1);
  }, 240_000);
});
