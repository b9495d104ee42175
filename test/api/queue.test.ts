import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalQueueOps } from '../../src/api/queue-ops.js';
import { createLogger } from '../../src/events/logger.js';
import type { QueueBackend } from '../../src/queue/backend.js';
import { FsSpool } from '../../src/queue/fs/spool.js';
import { newQueueId } from '../../src/queue/ids.js';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { adminConfig, call, KEYS, startAdmin, until } from './admin-helpers.js';
import { closedPort } from '../helpers/closed-port.js';

interface Entry {
  id: string;
  shard: number;
  mailFrom: string;
  recipients: { rcpt: string; status: string; attempts: number; nextAttemptAt?: string; lastStatus?: string; method?: string }[];
}

describe('queue endpoints on a live gateway', () => {
  const s = scenario();
  let gw: TestGateway;
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  let mxPort: number;
  const ids: string[] = [];
  beforeAll(async () => {
    // The MX is down at first; the retry delay is an hour, so only "retry now" can bring
    // a deferred message back within the test.
    mxPort = await closedPort();
    gw = await s.gateway({ admin: await adminConfig(), delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${mxPort}`, tls: 'none' } }, retry: { initialDelay: '1h', maxDelay: '1h' } } });
    admin = await startAdmin(gw);
    for (let i = 0; i < 3; i++) {
      const r = await sendMail(gw.port, { from: 'sender@client.test', to: [`q${i}@dest.test`, `w${i}@dest.test`], raw: testMessage({ subject: `queued ${i}` }) });
      ids.push(r.queueId as string);
    }
    for (const id of ids) await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === id);
    // The deferral is logged before it is saved: wait until the worker let go of them.
    await until(() => gw.gateway.queue.stats().leased === 0, 5000, 'leases released');
  });
  afterAll(async () => {
    await admin?.close();
  });

  it('lists and shows queued messages with their recipients', async () => {
    const list = await call(`${admin.url}/api/v1/queue`, { key: KEYS.ro });
    expect(list.status).toBe(200);
    const entries = list.body as Entry[];
    expect(entries.map((e) => e.id)).toEqual(ids);
    const one = await call(`${admin.url}/api/v1/queue/${ids[0]}`, { key: KEYS.ro });
    expect(one.status).toBe(200);
    const e = one.body as Entry;
    expect(e).toMatchObject({ id: ids[0], shard: 0, mailFrom: 'sender@client.test' });
    expect(e.recipients.map((r) => [r.rcpt, r.status, r.attempts, r.lastStatus, r.method])).toEqual([
      ['q0@dest.test', 'pending', 1, '4.4.1', 'tls'],
      ['w0@dest.test', 'pending', 1, '4.4.1', 'tls'],
    ]);
    expect(Date.parse(e.recipients[0]?.nextAttemptAt as string)).toBeGreaterThan(Date.now() + 30 * 60_000);
    expect((await call(`${admin.url}/api/v1/queue/01ZZZZZZZZZZZZZZZZ`, { key: KEYS.ro })).status).toBe(404);
    expect((await call(`${admin.url}/api/v1/queue/bad%20id`, { key: KEYS.ro })).status).toBe(400);
  });

  let mx: TestMx;
  it('retry now delivers a deferred message at once instead of in an hour', async () => {
    mx = await s.mx({ port: mxPort });
    const r = await call(`${admin.url}/api/v1/queue/${ids[1]}/retry`, { method: 'POST', key: KEYS.op });
    expect(r).toMatchObject({ status: 200, body: { id: ids[1], shard: 0, recipients: 2 } });
    await mx.waitFor(1, 10_000);
    expect(mx.messages[0]?.rcptTo).toEqual(['q1@dest.test', 'w1@dest.test']);
    await until(() => gw.gateway.queue.stats().depth === 2, 5000, 'delivered message removed');
    expect(gw.events('queue.retried')).toEqual([expect.objectContaining({ queueId: ids[1], actor: 'ops', recipients: ['q1@dest.test', 'w1@dest.test'] })]);
    // The others were not touched: still waiting for their hourly retry.
    await new Promise((res) => setTimeout(res, 300));
    expect(mx.messages).toHaveLength(1);
  });

  it('delete needs a reason, removes the message without a bounce and logs who and why', async () => {
    expect((await call(`${admin.url}/api/v1/queue/${ids[2]}`, { method: 'DELETE', key: KEYS.op })).status).toBe(400);
    const r = await call(`${admin.url}/api/v1/queue/${ids[2]}?reason=${encodeURIComponent('sent by mistake')}`, { method: 'DELETE', key: KEYS.op });
    expect(r).toMatchObject({ status: 200, body: { id: ids[2], recipients: 2 } });
    expect((await call(`${admin.url}/api/v1/queue/${ids[2]}`, { key: KEYS.ro })).status).toBe(404);
    expect((await call(`${admin.url}/api/v1/queue/${ids[2]}?reason=again`, { method: 'DELETE', key: KEYS.op })).status).toBe(404);
    expect(gw.events('queue.deleted')).toEqual([expect.objectContaining({ queueId: ids[2], actor: 'ops', reason: 'sent by mistake', recipients: ['q2@dest.test', 'w2@dest.test'] })]);
    expect(gw.events('dsn.queued')).toEqual([]);
    expect((await call(`${admin.url}/api/v1/queue`, { key: KEYS.ro })).body).toEqual([expect.objectContaining({ id: ids[0] })]);
  });
});

describe('LocalQueueOps', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-qops-'));
  const queue = new FsSpool(join(dir, 'spool'));
  const ops = new LocalQueueOps(queue, createLogger('silent'), 3);
  afterAll(async () => {
    await queue.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers busy for a message being delivered and never touches it; the change works once it is released', async () => {
    await queue.open();
    const w = await queue.receive({ id: newQueueId(), receivedAt: Date.now(), mailFrom: 'a@client.test', rcptTo: ['b@dest.test'], client: { ip: '127.0.0.1', helo: 'c', sessionId: 's' }, bodyType: '7bit', smtpUtf8: false });
    await w.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    const { id } = await w.commit();
    const [leased] = await queue.lease(Date.now(), 10);
    expect(leased?.envelope.id).toBe(id);
    expect(await ops.retryNow(id, 'tester')).toEqual({ result: 'busy', id });
    expect(await ops.remove(id, 'why', 'tester')).toEqual({ result: 'busy', id });
    expect(queue.stats().leased).toBe(1);
    await queue.release(id);
    expect(await ops.retryNow(id, 'tester')).toEqual({ result: 'done', id, shard: 3, recipients: 1 });
    // retry released the claim: the worker can lease it again at once.
    expect((await queue.lease(Date.now(), 10)).map((m) => m.envelope.id)).toEqual([id]);
    await queue.release(id);
    expect(await ops.remove(id, 'why', 'tester')).toEqual({ result: 'done', id, shard: 3, recipients: 1 });
    expect(await queue.get(id)).toBeUndefined();
    expect(await ops.remove(id, 'why', 'tester')).toEqual({ result: 'not-found', id });
  });

  it('a backend without claim() says so instead of racing its leases', async () => {
    const noClaim = { get: () => Promise.resolve(undefined) } as unknown as QueueBackend;
    expect(await new LocalQueueOps(noClaim, createLogger('silent')).retryNow('X', 't')).toMatchObject({ result: 'unsupported' });
  });
});
