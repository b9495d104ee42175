import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { findProgram } from '../helpers/programs.js';
import { sendNumbered as sender, testIdsOf, type LoadTally as Tally } from '../helpers/load-sender.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, testPrefix } from '../queue/redis-harness.js';
import { freePort, startRedisServer } from '../queue/redis-server.js';

const redisUp = await devRedisAvailable();
const redisServer = findProgram('redis-server');
const key = () => randomBytes(32).toString('base64');

/** Two instances' worth of config: one Redis queue, the same master keys, one receiving MX. */
function instanceConfig(dataDir: string, redisUrl: string, prefix: string, mxPort: number, keys: { portal: string; archive: string }, extra: Record<string, unknown> = {}) {
  return testConfigInput(dataDir, {
    log: { level: 'info' },
    queue: { backend: 'redis' },
    redis: { url: redisUrl, keyPrefix: prefix, leaseTime: '2s' },
    portal: { masterKeys: [{ id: 'k1', key: keys.portal }] },
    archive: { masterKeys: [{ id: 'k1', key: keys.archive }] },
    delivery: { routes: { '*': { nexthop: `127.0.0.1:${mxPort}`, tls: 'none' } }, retry: { initialDelay: '300ms', maxDelay: '1s' } },
    ...extra,
  });
}

const testIdsAt = (mx: TestMx) => testIdsOf(mx.messages);

async function allDelivered(mx: TestMx, acked: Set<string>, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let missing = [...acked];
  while (Date.now() < deadline) {
    const seen = new Set(testIdsAt(mx));
    missing = [...acked].filter((id) => !seen.has(id));
    if (!missing.length) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return missing;
}

describe.skipIf(!redisUp)('scale-out: two instances on one Redis', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-scale-'));
  const prefix = testPrefix();
  const gateways: ChildGateway[] = [];
  let mx: TestMx | undefined;
  afterAll(async () => {
    for (const g of gateways) g.killAll();
    await mx?.stop();
    await deleteKeys(DEV_REDIS_URL, prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('2,000 messages to both, one killed with -9 mid-load: every acknowledged message is delivered, few twice', async () => {
    const TOTAL = 2000;
    const CONCURRENCY = 50;
    mx = await new TestMx().start();
    const keys = { portal: key(), archive: key() };
    const config = (name: string) => instanceConfig(join(dir, name), DEV_REDIS_URL, prefix, mx!.port, keys, { delivery: { concurrency: CONCURRENCY, routes: { '*': { nexthop: `127.0.0.1:${mx!.port}`, tls: 'none' } }, retry: { initialDelay: '300ms', maxDelay: '1s' } } });
    for (const name of ['a', 'b']) mkdirSync(join(dir, name), { recursive: true });
    const a = await startChildGateway(join(dir, 'a'), config('a'));
    const b = await startChildGateway(join(dir, 'b'), config('b'));
    gateways.push(a, b);
    const tally: Tally = { acked: new Set(), refused: [] };
    let issued = 0;
    let killed = false;
    const next = () => (issued >= TOTAL ? undefined : issued++);
    const onAck = () => {
      if (!killed && tally.acked.size >= 700) {
        killed = true;
        a.killAll();
      }
    };
    await Promise.all([...Array.from({ length: 10 }, () => sender(a.port, next, tally, onAck)), ...Array.from({ length: 10 }, () => sender(b.port, next, tally, onAck))]);
    expect((await a.exited).signal).toBe('SIGKILL');
    expect(tally.acked.size).toBeGreaterThan(1500);

    // B takes over A's deliveries once their leases (2 s) run out.
    const missing = await allDelivered(mx, tally.acked, 60_000);
    expect(missing).toEqual([]);
    const counts = new Map<string, number>();
    for (const id of testIdsAt(mx)) counts.set(id, (counts.get(id) ?? 0) + 1);
    const duplicates = [...counts.values()].filter((c) => c > 1).length;
    // At least once: only what A was delivering at the kill (at most its concurrency) repeats.
    expect(duplicates).toBeLessThanOrEqual(CONCURRENCY);
    console.info(`scale-out kill test: ${tally.acked.size} acknowledged, ${counts.size} distinct delivered, ${duplicates} delivered twice`);
  });
});

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

  it('clients get 451 while it is down; nothing acknowledged is lost, all delivered after', async () => {
    const port = await freePort();
    const args = ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''];
    let redis = await startRedisServer(redisServer as string, port, args);
    servers.push(redis);
    mx = await new TestMx().start();
    const prefix = testPrefix();
    mkdirSync(join(dir, 'gw'), { recursive: true });
    gw = await startChildGateway(join(dir, 'gw'), instanceConfig(join(dir, 'gw', 'data'), redis.url, prefix, mx.port, { portal: key(), archive: key() }));
    const tally: Tally = { acked: new Set(), refused: [] };
    let n = 0;
    let stop = false;
    // A steady trickle of new sessions, as a relay sends: each message on its own connection.
    const load = (async () => {
      while (!stop) {
        let used = false;
        const once = () => (used || stop ? undefined : ((used = true), n++));
        await sender(gw!.port, once, tally).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await new Promise((r) => setTimeout(r, 2000));
    const before = tally.acked.size;
    await redis.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 30_000));
    const refusedWhileDown = tally.refused.length;
    redis = await startRedisServer(redisServer as string, port, args);
    servers.push(redis);
    await new Promise((r) => setTimeout(r, 5000));
    stop = true;
    await load;
    try {
      expect(before).toBeGreaterThan(0);
      expect(refusedWhileDown).toBeGreaterThan(0);
      expect(tally.refused.every((r) => /^451 /.test(r)), tally.refused.slice(0, 3).join('; ')).toBe(true);
      expect(tally.acked.size).toBeGreaterThan(before); // accepting again after Redis came back
      expect(await allDelivered(mx, tally.acked, 30_000)).toEqual([]);
    } finally {
      gw.killAll();
      await redis.kill('SIGTERM');
    }
  });
});
