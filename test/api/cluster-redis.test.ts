import { randomBytes } from 'node:crypto';
import { generateKey } from 'openpgp';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { parseMetrics, sample } from '../events/metrics-helpers.js';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { startKeys } from '../../src/keys/start.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, testPrefix } from '../queue/redis-harness.js';
import { adminConfig, call, KEYS, until } from './admin-helpers.js';

const redisUp = await devRedisAvailable();

interface Entry {
  id: string;
}

/** The fs version of this file is cluster.test.ts: there each worker owns a shard; here all share one queue. */
// Skipped only on a developer machine without Redis on 127.0.0.1:6379; under CI=true devRedisAvailable throws (.ci/run starts one).
describe.skipIf(!redisUp)('admin listener of a cluster (workers: 2) on one Redis queue', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-api-cluster-redis-'));
  const prefix = testPrefix();
  let gw: ChildGateway;
  let url: string;
  let mx: TestMx | undefined;
  let mxPort: number;
  const accepted: string[] = [];
  const N = 12;
  let input: Record<string, unknown>;
  const metric = async (name: string) => sample(parseMetrics((await call(`${url}/metrics`)).text), name);

  beforeAll(async () => {
    const probe = await new TestMx().start();
    mxPort = probe.port;
    await probe.stop();
    input = testConfigInput(join(dir, 'data'), {
      workers: 2,
      log: { level: 'info' },
      admin: await adminConfig(),
      queue: { backend: 'redis' },
      redis: { url: DEV_REDIS_URL, keyPrefix: prefix },
      portal: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
      archive: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
      delivery: { routes: { '*': { nexthop: `127.0.0.1:${mxPort}`, tls: 'none' } }, retry: { initialDelay: '1h', maxDelay: '1h' } },
    });
    gw = await startChildGateway(dir, input);
    await until(() => gw.logs.some((l) => l.event === 'gateway.ready' && l.workers === 2), 15_000, 'both workers ready');
    url = `http://127.0.0.1:${gw.logs.find((l) => l.event === 'admin.listen')?.port as number}`;
    for (let i = 0; i < N; i++) {
      const r = await sendMail(gw.port, { from: 'sender@client.test', to: [`c${i}@dest.test`], raw: testMessage({ subject: `cluster redis ${i}` }) });
      expect(r.ok).toBe(true);
    }
    await until(() => gw.logs.filter((l) => l.event === 'delivery.deferred').length === N, 20_000, 'every message deferred');
    await until(async () => (await metric('postern_queue_leased_messages')) === 0, 5000, 'leases released');
    accepted.push(...gw.logs.filter((l) => l.event === 'queue.accepted').map((l) => String(l.queueId)));
  });
  afterAll(async () => {
    gw?.killAll();
    await mx?.stop();
    await deleteKeys(DEV_REDIS_URL, prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('/metrics counts the shared queue once, not once per worker; counters still add up', async () => {
    const f = parseMetrics((await call(`${url}/metrics`)).text);
    expect(sample(f, 'postern_queue_messages')).toBe(N);
    expect(sample(f, 'postern_messages_accepted_total')).toBe(N);
    expect(sample(f, 'postern_recipients_total', { method: 'tls', outcome: 'deferred' })).toBe(N);
  });

  it('queue list shows each message once; a delete and a retry are made once, and the gauges follow', async () => {
    const list = (await call(`${url}/api/v1/queue`, { key: KEYS.ro })).body as Entry[];
    expect(list.map((e) => e.id).sort()).toEqual([...accepted].sort());

    const [gone, retried] = accepted;
    expect(await call(`${url}/api/v1/queue/${gone}?reason=cluster%20test`, { method: 'DELETE', key: KEYS.op })).toMatchObject({ status: 200, body: { id: gone } });
    expect(((await call(`${url}/api/v1/queue`, { key: KEYS.ro })).body as Entry[]).map((e) => e.id)).not.toContain(gone);
    // The worker that did not delete it answers from Redis too, not from what it last saw.
    expect(await metric('postern_queue_messages')).toBe(N - 1);

    mx = await new TestMx({ port: mxPort }).start();
    expect(await call(`${url}/api/v1/queue/${retried}/retry`, { method: 'POST', key: KEYS.op })).toMatchObject({ status: 200, body: { id: retried, recipients: 1 } });
    await mx.waitFor(1, 10_000);
    await until(async () => (await metric('postern_queue_messages')) === N - 2, 10_000, 'retried message delivered and gone');
    expect(gw.logs.filter((l) => l.event === 'queue.deleted' && l.queueId === gone)).toHaveLength(1);
    expect(gw.logs.filter((l) => l.event === 'queue.retried' && l.queueId === retried)).toHaveLength(1);
    expect(mx.messages).toHaveLength(1);
  });

  it('a key imported through the admin API is in the shared store: another instance (its own data directory) uses it', async () => {
    const { publicKey } = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'pat@dest.test' }], format: 'armored' });
    const r = await call(`${url}/api/v1/keys`, { method: 'POST', key: KEYS.op, json: { material: publicKey } });
    expect(r).toMatchObject({ status: 200, body: { results: [{ stored: true, addresses: ['pat@dest.test'] }] } });
    const other = validateConfig({ ...input, dataDir: mkdtempSync(join(tmpdir(), 'postern-api-cluster-redis-other-')) });
    const keys = await startKeys(other, other.dataDir, async () => [], createLogger('silent'));
    try {
      expect(await keys.lookup.pgpStored('pat@dest.test')).toMatchObject({ source: 'import' });
    } finally {
      await keys.store.close();
    }
  });
});
