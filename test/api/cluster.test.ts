import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { parseMetrics, sample } from '../events/metrics-helpers.js';
import { adminConfig, call, KEYS, until } from './admin-helpers.js';

interface Entry {
  id: string;
  shard: number;
}

describe('admin listener of a cluster (workers: 2)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-api-cluster-'));
  let gw: ChildGateway;
  let url: string;
  let mxPort: number;
  let mx: TestMx | undefined;
  const accepted: { id: string; shard: number }[] = [];
  const N = 20;

  beforeAll(async () => {
    const probe = await new TestMx().start();
    mxPort = probe.port;
    await probe.stop();
    gw = await startChildGateway(
      dir,
      testConfigInput(join(dir, 'data'), {
        workers: 2,
        log: { level: 'info' },
        admin: await adminConfig(),
        delivery: { routes: { '*': { nexthop: `127.0.0.1:${mxPort}`, tls: 'none' } }, retry: { initialDelay: '1h', maxDelay: '1h' } },
      }),
    );
    await until(() => gw.logs.some((l) => l.event === 'gateway.ready' && l.workers === 2), 15_000, 'both workers ready');
    const listen = gw.logs.find((l) => l.event === 'admin.listen');
    expect(listen).toMatchObject({ process: 'primary', host: '127.0.0.1' });
    url = `http://127.0.0.1:${listen?.port as number}`;
    for (let i = 0; i < N; i++) {
      const r = await sendMail(gw.port, { from: 'sender@client.test', to: [`c${i}@dest.test`], raw: testMessage({ subject: `cluster api ${i}` }) });
      expect(r.ok).toBe(true);
    }
    await until(() => gw.logs.filter((l) => l.event === 'delivery.deferred').length === N, 20_000, 'every message deferred');
    // Deferrals are logged before they are saved: wait until no worker holds a message.
    await until(async () => sample(parseMetrics((await call(`${url}/metrics`)).text), 'postern_queue_leased_messages') === 0, 5000, 'leases released');
    for (const l of gw.logs.filter((x) => x.event === 'queue.accepted')) accepted.push({ id: String(l.queueId), shard: Number(l.shard) });
    // The kernel spreads connections over both workers: each shard holds some.
    expect(new Set(accepted.map((a) => a.shard))).toEqual(new Set([0, 1]));
  });
  afterAll(async () => {
    gw?.killAll();
    await mx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/metrics sums both workers: counters and the queue depth', async () => {
    const r = await call(`${url}/metrics`);
    expect(r.status).toBe(200);
    const f = parseMetrics(r.text);
    expect(sample(f, 'postern_messages_accepted_total')).toBe(N);
    expect(sample(f, 'postern_smtp_connections_total', { result: 'accepted' })).toBe(N);
    expect(sample(f, 'postern_recipients_total', { method: 'tls', outcome: 'deferred' })).toBe(N);
    expect(sample(f, 'postern_queue_messages')).toBe(N);
    expect(sample(f, 'postern_ready')).toBe(1);
    // Sums of per-worker values, not one worker's: each shard alone holds fewer than N.
    for (const shard of [0, 1]) expect(accepted.filter((a) => a.shard === shard).length).toBeLessThan(N);
  });

  it('policy explain in the primary answers with the policy it holds as the workers do (the configured file)', async () => {
    const r = await call(`${url}/api/v1/policy/explain`, { method: 'POST', key: KEYS.ro, json: { from: 'sender@client.test', to: ['a@dest.test'] } });
    expect(r.status).toBe(200);
    const body = r.body as { policyFile: string; decisions: { ruleId: string; method: string }[] };
    expect([body.policyFile, body.decisions.map((d) => [d.ruleId, d.method])]).toEqual([expect.stringMatching(/test\/fixtures\/policy-relay\.yaml$/), [['default', 'tls']]]);
    expect(gw.logs.filter((l) => l.event === 'policy.loaded' && l.process === 'primary')).toHaveLength(1);
  });

  it('/readyz asks every worker', async () => {
    expect(await call(`${url}/readyz`)).toMatchObject({ status: 200, body: { ready: true, problems: [] } });
  });

  it('queue list shows the messages of both shards; show, delete and retry reach the owning worker', async () => {
    const list = await call(`${url}/api/v1/queue`, { key: KEYS.ro });
    expect(list.status).toBe(200);
    const entries = list.body as Entry[];
    expect(entries.map((e) => `${e.id}@${e.shard}`).sort()).toEqual(accepted.map((a) => `${a.id}@${a.shard}`).sort());

    const in0 = accepted.find((a) => a.shard === 0)!;
    const in1 = accepted.find((a) => a.shard === 1)!;
    expect(await call(`${url}/api/v1/queue/${in1.id}`, { key: KEYS.ro })).toMatchObject({ status: 200, body: { id: in1.id, shard: 1 } });
    expect((await call(`${url}/api/v1/queue/01ZZZZZZZZZZZZZZZZ`, { key: KEYS.ro })).status).toBe(404);

    expect(await call(`${url}/api/v1/queue/${in0.id}?reason=cluster%20test`, { method: 'DELETE', key: KEYS.op })).toMatchObject({ status: 200, body: { id: in0.id, shard: 0 } });
    expect((await call(`${url}/api/v1/queue`, { key: KEYS.ro })).body).toHaveLength(N - 1);
    await until(() => gw.logs.some((l) => l.event === 'queue.deleted' && l.queueId === in0.id && l.shard === 0 && l.actor === 'ops'), 5000, 'queue.deleted from worker 0');

    mx = await new TestMx({ port: mxPort }).start();
    expect(await call(`${url}/api/v1/queue/${in1.id}/retry`, { method: 'POST', key: KEYS.op })).toMatchObject({ status: 200, body: { id: in1.id, shard: 1, recipients: 1 } });
    await mx.waitFor(1, 10_000);
    expect(mx.messages.map((m) => m.rcptTo[0])).toHaveLength(1);
    await until(async () => ((await call(`${url}/api/v1/queue`, { key: KEYS.ro })).body as Entry[]).length === N - 2, 10_000, 'retried message delivered and gone');
    // api.call lines come from the primary, which serves the listener.
    const calls = gw.logs.filter((l) => l.event === 'api.call');
    expect(calls.length).toBeGreaterThanOrEqual(6);
    expect(calls.every((l) => l.process === 'primary')).toBe(true);
    expect(calls.find((l) => l.method === 'DELETE')).toMatchObject({ actor: 'ops', role: 'operator', status: 200, ip: '127.0.0.1' });
    // ... and kept in the primary's chain of the audit trail: trace finds who deleted the message.
    const deletedBy = async () => {
      const t = await call(`${url}/api/v1/trace?q=${in0.id}`, { key: KEYS.ro });
      const events = ((t.body as { messages: { events: { event: string; shard: string; fields: Record<string, unknown> }[] }[] }).messages[0]?.events ?? []);
      return events.find((e) => e.event === 'api.call' && e.fields.method === 'DELETE');
    };
    await until(async () => (await deletedBy()) !== undefined, 5000, 'api.call in the audit trail');
    expect(await deletedBy()).toMatchObject({ shard: 'primary', fields: { actor: 'ops', status: 200, queueId: in0.id } });
    expect(await call(`${url}/api/v1/audit/verify`, { key: KEYS.ro })).toMatchObject({ status: 200, body: { ok: true } });
  });
});
