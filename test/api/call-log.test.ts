import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { generateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJournal } from '../../src/archive/journal.js';
import { listSegments } from '../../src/events/audit-files.js';
import { auditRecords } from '../../src/events/audit-read.js';
import { eventBusOf } from '../../src/events/logger.js';
import { hashPassword } from '../../src/ingress/password-hash.js';
import { decisions, envelope, message, silent } from '../archive/helpers.js';
import { parseMetrics, sample } from '../events/metrics-helpers.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { RawSmtp, sendMail, testMessage } from '../helpers/smtp-client.js';
import { adminConfig, call, KEYS, startAdmin, until } from './admin-helpers.js';
import { closedPort } from '../helpers/closed-port.js';

const s = scenario();
let gw: TestGateway;
let admin: Awaited<ReturnType<typeof startAdmin>>;
const api = (path: string) => `${admin.url}/api/v1${path}`;
const apiCalls = (path: string) => gw.logs.filter((l) => l.event === 'api.call' && l.path === path);

/** The webhook events in the gateway's outbox files as they are on disk now. */
async function inOutbox(): Promise<string[]> {
  const dir = join(gw.dataDir, 'webhooks', '0');
  const lines = [];
  for (const { name } of await listSegments(dir)) lines.push(...(await readFile(join(dir, name), 'utf8')).split('\n').filter(Boolean));
  return lines.map((l) => JSON.parse(l) as { t: string; event?: string }).flatMap((r) => (r.t === 'event' && r.event ? [r.event] : []));
}

/** The records of the gateway's chain as they are on disk now (no flush first). */
async function onDisk(event: string): Promise<Record<string, unknown>[]> {
  const out = [];
  for await (const r of auditRecords(gw.dataDir)) if (r.event === event) out.push(r.fields);
  return out;
}

const publicKey = async (email: string) => (await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email }], format: 'armored' })).publicKey;

/** A key hashed at the production cost (hash-password's defaults): checking it takes a noticeable time. */
const SLOW_KEY = 'slow-key-0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * Sends one request over a raw socket and hangs up `afterMs` later, without reading the
 * reply: a client that gives up while the call is still being authenticated.
 */
async function hangUp(method: string, path: string, key: string, afterMs: number): Promise<void> {
  const socket = connect(admin.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${key}\r\nConnection: close\r\n\r\n`);
  await new Promise((r) => setTimeout(r, afterMs));
  socket.destroy();
}

beforeAll(async () => {
  const config = await adminConfig();
  // Last, so the other keys are found before it is checked (it is checked for a wrong key).
  config.apiKeys = [...(config.apiKeys as unknown[]), { name: 'slow-ops', hash: await hashPassword(SLOW_KEY), role: 'operator' }];
  // A next hop with nobody listening and an hour between attempts: a message stays queued.
  const probe = { port: await closedPort() };
  gw = await s.gateway({
    admin: config,
    audit: { failClosed: true },
    health: { probeInterval: '100ms' },
    delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${probe.port}`, tls: 'none' } }, retry: { initialDelay: '1h', maxDelay: '1h' } },
    // Nobody listens there either: the key events stay in the webhook outbox.
    webhooks: [{ url: `http://127.0.0.1:${probe.port}/hook`, events: ['keys.*'], secret: 'a-webhook-secret-of-32-characters', retry: { initialDelay: '1h' } }],
  });
  admin = await startAdmin(gw);
});
afterAll(async () => {
  await admin?.close();
});

describe('api.call for a reply the client cut off', () => {
  it('an archive export aborted part way is logged once, with aborted: true, and recorded in the trail', async () => {
    // About 24 MB of mbox: far more than the socket buffers hold, so the reply cannot finish before the abort.
    const journal = await openJournal(gw.config, gw.dataDir, silent, { shard: 97 });
    for (let i = 0; i < 12; i++) {
      const e = envelope({ from: 'bulk@client.test', to: ['pat@dest.test'] });
      const body = randomBytes(1536 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n');
      await journal!.record({ envelope: e, decisions: decisions(e), body: message(`bulk ${i}`, body) });
    }
    await journal!.close();

    const path = '/api/v1/archive/export';
    const abort = new AbortController();
    const res = await fetch(`${api('/archive/export')}?format=mbox&sender=bulk@client.test`, { headers: { 'x-api-key': KEYS.adm }, signal: abort.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    abort.abort();
    await reader.cancel().catch(() => undefined);

    await until(() => apiCalls(path).length > 0, 10_000, 'the api.call line of the aborted export');
    // Nothing else comes later for the same request (no second line once the stream gives up).
    await new Promise((r) => setTimeout(r, 500));
    expect(apiCalls(path)).toEqual([expect.objectContaining({ actor: 'boss', method: 'GET', status: 200, aborted: true, query: ['format', 'sender'], ip: '127.0.0.1', level: 'warn' })]);
    await gw.gateway.flushEvents();
    expect((await onDisk('api.call')).filter((f) => f.path === path)).toEqual([expect.objectContaining({ aborted: true, actor: 'boss', status: 200 })]);

    // A complete reply is one line without `aborted`.
    expect((await call(`${api('/archive/export')}?format=mbox&sender=nobody@client.test`, { key: KEYS.adm })).status).toBe(200);
    await until(() => apiCalls(path).length === 2, 5000, 'the second export');
    expect(apiCalls(path)[1]).not.toHaveProperty('aborted');
  });
});

describe('api.call for a client that hangs up before the reply', () => {
  it('a change goes on and is recorded once with who made it, what it answered and aborted: true; a wrong key records 401', async () => {
    const { queueId } = await sendMail(gw.port, { from: 'sender@client.test', to: ['gone@dest.test'], raw: testMessage({ subject: 'to be deleted' }) });
    await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === queueId);
    await until(() => gw.gateway.queue.stats().leased === 0, 5000, 'the lease released');
    const path = `/api/v1/queue/${queueId}`;

    // The production-cost check of the key takes far longer than 10 ms: the client is gone before it ends.
    await hangUp('DELETE', `${path}?reason=hung+up`, SLOW_KEY, 10);
    await until(() => apiCalls(path).length > 0, 20_000, 'the api.call line of the cut-off DELETE');
    expect(apiCalls(path)).toEqual([expect.objectContaining({ actor: 'slow-ops', role: 'operator', method: 'DELETE', status: 200, aborted: true, level: 'warn' })]);
    // It went through, and its record waited for the trail like any change.
    expect(gw.events('queue.deleted')).toEqual([expect.objectContaining({ queueId, actor: 'slow-ops', reason: 'hung up' })]);
    expect((await call(api(`/queue/${queueId}`), { key: KEYS.ro })).status).toBe(404);

    await hangUp('DELETE', `/api/v1/queue/01ZZZZZZZZZZZZZZZZ?reason=guess`, 'wrong-key-0123456789abcdefghijklmnopqrstuvw', 10);
    await until(() => apiCalls('/api/v1/queue/01ZZZZZZZZZZZZZZZZ').length > 0, 20_000, 'the api.call line of the cut-off wrong key');
    expect(apiCalls('/api/v1/queue/01ZZZZZZZZZZZZZZZZ')).toEqual([expect.objectContaining({ actor: 'anonymous', status: 401, authFailure: 'invalid', aborted: true })]);

    // Nothing more comes later for either call.
    await new Promise((r) => setTimeout(r, 300));
    await gw.gateway.flushEvents();
    const records = (await onDisk('api.call')).filter((f) => f.method === 'DELETE');
    expect(records).toEqual([
      expect.objectContaining({ path, actor: 'slow-ops', status: 200, aborted: true, queueId }),
      expect.objectContaining({ path: '/api/v1/queue/01ZZZZZZZZZZZZZZZZ', actor: 'anonymous', status: 401, authFailure: 'invalid', aborted: true }),
    ]);
    expect((await onDisk('queue.deleted')).map((f) => f.actor)).toEqual(['slow-ops']);
  });
});

describe('changes through the API and the audit trail', () => {
  it('a change is on disk in the trail when its reply arrives', async () => {
    const r = await call(api('/keys'), { method: 'POST', key: KEYS.op, json: { material: await publicKey('first@dest.test') } });
    expect(r.status).toBe(200);
    // No flush: the reply waited for the webhook outbox, and for the records.
    expect(await inOutbox()).toEqual(['keys.imported']);
    expect((await onDisk('keys.imported')).map((f) => f.actor)).toEqual(['ops']);
    expect((await onDisk('api.call')).filter((f) => f.method === 'POST' && f.path === '/api/v1/keys')).toEqual([expect.objectContaining({ actor: 'ops', status: 200 })]);
  });

  it('a change answers only once the durable subscribers of the event bus (the webhook outbox) have stored its events', async () => {
    // A second durable subscriber that stores slowly: the reply must wait for it too.
    const stored: string[] = [];
    let seen: string[] = [];
    const unsubscribe = eventBusOf(gw.logger).subscribe((e) => seen.push(e.event));
    const unbar = eventBusOf(gw.logger).addBarrier(async () => {
      const now = seen;
      seen = [];
      await new Promise((r) => setTimeout(r, 300));
      stored.push(...now);
    });
    try {
      const r = await call(api('/keys'), { method: 'POST', key: KEYS.op, json: { material: await publicKey('barrier@dest.test') } });
      expect(r.status).toBe(200);
      expect(stored).toEqual(expect.arrayContaining(['keys.imported', 'api.call']));
    } finally {
      unbar();
      unsubscribe();
    }
  });

  it('while the trail cannot be written: a change is refused with 503 (or, if the failure came during it, made and answered 503); readiness (audit.failClosed) and SMTP follow; all recovers', async () => {
    // Let every earlier line reach the disk, so nothing is waiting for the next write.
    await until(() => apiCalls('/api/v1/keys').length === 2, 5000, 'the earlier api.call lines');
    await gw.gateway.flushEvents();
    const dir = join(gw.dataDir, 'audit', '0');
    const segment = join(dir, (await listSegments(dir)).at(-1)!.name);
    // Immutable: even root cannot write it (the writer's open descriptor gets EPERM).
    execFileSync('chattr', ['+i', segment]);
    try {
      // The trail does not know yet: the change is made, then its records cannot be written.
      const made = await call(api('/keys'), { method: 'POST', key: KEYS.op, json: { material: await publicKey('made@dest.test') } });
      expect(made.status).toBe(503);
      expect((made.body as { message: string }).message).toMatch(/^the change was made \(it answered 200\), but the audit trail could not record it: /);
      expect(((await call(api('/keys'), { key: KEYS.ro })).body as { addresses: string[] }[]).flatMap((k) => k.addresses)).toContain('made@dest.test');

      // Now it knows: the next change is not made at all.
      const refused = await call(api('/keys'), { method: 'POST', key: KEYS.op, json: { material: await publicKey('refused@dest.test') } });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('30');
      expect((refused.body as { message: string }).message).toMatch(/no change is made/);
      expect(((await call(api('/keys'), { key: KEYS.ro })).body as { addresses: string[] }[]).flatMap((k) => k.addresses)).not.toContain('refused@dest.test');
      // Reads go on.
      expect((await call(api('/queue'), { key: KEYS.ro })).status).toBe(200);

      // audit.failClosed: not ready, and new mail is refused.
      await until(async () => (await call(`${admin.url}/readyz`)).status === 503, 5000, '/readyz 503');
      expect((await call(`${admin.url}/readyz`)).body).toMatchObject({ ready: false, problems: [{ check: 'audit', code: 451, reason: 'audit trail cannot be written (audit.failClosed)' }] });
      const c = await RawSmtp.connect(gw.port);
      await c.command('EHLO client.test');
      expect(await c.command('MAIL FROM:<sender@client.test>')).toMatch(/^451 4\.3\.0 /);
      await c.command('QUIT');
      const m = parseMetrics((await call(`${admin.url}/metrics`)).text);
      expect(sample(m, 'postern_audit_failures_total')).toBeGreaterThanOrEqual(1);
      expect(sample(m, 'postern_audit_pending_records')).toBeGreaterThanOrEqual(2);
      expect(sample(m, 'postern_ready')).toBe(0);
      expect(gw.events('audit.failed')[0]).toMatchObject({ level: 'error', failures: 1, err: expect.stringMatching(/EPERM/) });
    } finally {
      execFileSync('chattr', ['-i', segment]);
    }
    await until(() => gw.events('audit.recovered').length === 1, 15_000, 'audit.recovered');
    await until(async () => (await call(`${admin.url}/readyz`)).status === 200, 5000, '/readyz 200 again');
    const m = parseMetrics((await call(`${admin.url}/metrics`)).text);
    expect(sample(m, 'postern_audit_pending_records')).toBe(0);

    // What was held in memory is on disk now: the change that was made, with its outcome, and the refusal.
    const posts = (await onDisk('api.call')).filter((f) => f.method === 'POST' && f.path === '/api/v1/keys').map((f) => f.status);
    expect(posts).toEqual([200, 200, 200, 503]);
    expect((await onDisk('keys.imported')).length).toBe(3);
    expect(await call(api('/audit/verify'), { key: KEYS.ro })).toMatchObject({ status: 200, body: { ok: true } });
    expect((await call(api('/keys'), { method: 'POST', key: KEYS.op, json: { material: await publicKey('after@dest.test') } })).status).toBe(200);
  });
});
