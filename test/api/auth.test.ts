import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { Authenticator } from '../../src/api/auth.js';
import { auditRecords } from '../../src/events/audit-read.js';
import { hashPassword, verifyPassword } from '../../src/ingress/password-hash.js';
import { parseMetrics, sample } from '../events/metrics-helpers.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { adminConfig, BASIC, call, KEYS, startAdmin, until } from './admin-helpers.js';

const s = scenario();
let gw: TestGateway;
let admin: Awaited<ReturnType<typeof startAdmin>>;
let queued: string;

beforeAll(async () => {
  // Nothing listens on the route's port: messages stay queued, for the API to act on.
  gw = await s.gateway({ admin: await adminConfig(), delivery: { routes: { '*': { nexthop: '127.0.0.1:9', tls: 'none' } }, retry: { initialDelay: '1h' } } });
  admin = await startAdmin(gw);
  const r = await sendMail(gw.port, { from: 'sender@client.test', to: ['r@dest.test'], raw: testMessage() });
  queued = r.queueId as string;
  await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === queued);
  // The deferral is logged before it is saved: wait until the worker let go of it.
  await until(() => gw.gateway.queue.stats().leased === 0, 5000, 'lease released');
});
afterAll(async () => {
  await admin?.close();
});

const apiCalls = () => gw.logs.filter((l) => l.event === 'api.call');

describe('admin API authentication and roles', () => {
  it('no credentials or a wrong key: 401 with a Basic challenge', async () => {
    for (const key of [undefined, 'not-a-key-0123456789abcdefghijklmnopq', `${KEYS.ro}x`]) {
      const r = await call(`${admin.url}/api/v1/queue`, { key });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Basic realm="postern-admin"/);
    }
    expect((await call(`${admin.url}/api/v1/queue`, { basic: { name: BASIC.name, password: 'wrong password here' } })).status).toBe(401);
    expect((await call(`${admin.url}/api/v1/queue`, { basic: { name: 'nobody', password: BASIC.password } })).status).toBe(401);
  });

  it('a read-only key may read but not delete or retry (403); an operator may', async () => {
    const list = await call(`${admin.url}/api/v1/queue`, { key: KEYS.ro });
    expect(list.status).toBe(200);
    expect((list.body as { id: string }[]).map((e) => e.id)).toContain(queued);
    const del = await call(`${admin.url}/api/v1/queue/${queued}?reason=spam`, { method: 'DELETE', key: KEYS.ro });
    expect(del.status).toBe(403);
    expect((del.body as { message: string }).message).toBe('role read-only may not do this (needs operator)');
    expect((await call(`${admin.url}/api/v1/queue/${queued}/retry`, { method: 'POST', key: KEYS.ro })).status).toBe(403);
    expect((await call(`${admin.url}/api/v1/queue/${queued}`, { key: KEYS.ro })).status).toBe(200); // still there
    // Export hands out content: admin only, even for an operator.
    expect((await call(`${admin.url}/api/v1/archive/export?format=mbox`, { key: KEYS.op })).status).toBe(403);
    const byBasic = await call(`${admin.url}/api/v1/queue/${queued}?reason=${encodeURIComponent('test clean-up')}`, { method: 'DELETE', basic: BASIC });
    expect(byBasic).toMatchObject({ status: 200, body: { id: queued, recipients: 1 } });
    expect(gw.events('queue.deleted')).toEqual([expect.objectContaining({ queueId: queued, actor: 'alice', reason: 'test clean-up', recipients: ['r@dest.test'] })]);
  });

  it('every API call is an api.call line with actor, role, method, path, status and ip — never the credentials', async () => {
    const seen = apiCalls().length;
    await call(`${admin.url}/api/v1/queue`, { key: KEYS.adm });
    await call(`${admin.url}/api/v1/queue`, { key: 'wrong-key-0123456789abcdefghijklmnopqrs' });
    await call(`${admin.url}/api/v1/queue/${queued}?reason=x`, { method: 'DELETE', key: KEYS.ro });
    await until(() => apiCalls().length === seen + 3, 5000, 'three api.call lines');
    const [ok, unauth, forbidden] = apiCalls().slice(seen);
    expect(ok).toMatchObject({ actor: 'boss', role: 'admin', via: 'api-key', method: 'GET', path: '/api/v1/queue', status: 200, ip: '127.0.0.1', level: 'info' });
    expect(unauth).toMatchObject({ actor: 'anonymous', method: 'GET', path: '/api/v1/queue', status: 401, ip: '127.0.0.1', level: 'warn' });
    expect(forbidden).toMatchObject({ actor: 'reader', role: 'read-only', method: 'DELETE', path: `/api/v1/queue/${queued}`, query: ['reason'], route: '/api/v1/queue/:id', status: 403 });
    const everything = JSON.stringify(gw.logs);
    for (const secret of [...Object.values(KEYS), BASIC.password]) expect(everything).not.toContain(secret);
  });

  it('api.call keeps the path and the names of query parameters, never their values (search terms are content)', async () => {
    const seen = apiCalls().length;
    const r = await call(`${admin.url}/api/v1/archive/search?subject=Biopsy%20of%20Jane%20Roe&keyword=HIV-POSITIVE`, { key: KEYS.adm });
    expect(r.status).toBe(200);
    await until(() => apiCalls().length === seen + 1, 5000, 'one api.call line');
    const line = apiCalls()[seen];
    expect(line).toMatchObject({ path: '/api/v1/archive/search', route: '/api/v1/archive/search', query: ['subject', 'keyword'], status: 200 });
    expect(JSON.stringify(line)).not.toMatch(/Biopsy|Jane|Roe|HIV/);
  });

  it('monitoring endpoints are open (no api.call lines for scrapes)', async () => {
    const seen = apiCalls().length;
    expect((await call(`${admin.url}/metrics`)).status).toBe(200);
    expect((await call(`${admin.url}/healthz`)).status).toBe(200);
    expect((await call(`${admin.url}/readyz`)).status).toBe(200);
    expect((await call(`${admin.url}/openapi.json`)).status).toBe(200);
    expect(apiCalls().length).toBe(seen);
  });
});

describe('admin.metricsAuth', () => {
  it('true: /metrics needs a principal of any role; each refusal is an api.call line, an audit record and counted, as on /api', async () => {
    const g = await s.gateway({ admin: await adminConfig({ metricsAuth: true, authLimit: { failures: 2, window: '1m' } }) });
    const a = await startAdmin(g);
    const refusals = () => g.logs.filter((l) => l.event === 'api.call' && l.path === '/metrics');
    try {
      expect((await call(`${a.url}/metrics`)).status).toBe(401);
      const r = await call(`${a.url}/metrics`, { key: KEYS.ro });
      expect(r.status).toBe(200);
      expect(r.text).toMatch(/^# TYPE postern_messages_accepted_total counter$/m);
      expect((await call(`${a.url}/healthz`)).status).toBe(200);
      // Guessing keys at /metrics counts toward the limit like anywhere else.
      for (const status of [401, 401, 429]) expect((await call(`${a.url}/metrics`, { key: 'wrong-key-0123456789abcdefghijklmnopqrs' })).status).toBe(status);

      await until(() => refusals().length === 4, 5000, 'four api.call lines for /metrics');
      // A scrape that was let in is not logged: only the refusals.
      expect(refusals().map((l) => [l.status, l.authFailure, l.actor, l.level])).toEqual([
        [401, 'missing', 'anonymous', 'warn'],
        [401, 'invalid', 'anonymous', 'warn'],
        [401, 'invalid', 'anonymous', 'warn'],
        [429, 'rate-limited', 'anonymous', 'warn'],
      ]);
      // 127.0.0.1 is blocked now: read the counters from the gateway itself.
      const m = parseMetrics(await g.gateway.operations.sources.metrics());
      expect(sample(m, 'postern_admin_auth_failures_total', { result: 'invalid' })).toBe(2);
      expect(sample(m, 'postern_admin_auth_failures_total', { result: 'rate-limited' })).toBe(1);
      await g.gateway.flushEvents();
      const onDisk = [];
      for await (const rec of auditRecords(g.dataDir)) if (rec.event === 'api.call' && rec.fields.path === '/metrics') onDisk.push(rec.fields.status);
      expect(onDisk).toEqual([401, 401, 401, 429]);
    } finally {
      await a.close();
    }
  });
});

describe('Basic auth for a name that is not a user', () => {
  const basic = (name: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}` });
  const cost = (hash: string) => hash.split('$').slice(0, 4).join('$');

  it('is checked by the same verifier, against a hash of the users\' cost, so its timing does not tell names apart', async () => {
    const admin = validateConfig({ hostname: 'postern.test', admin: await adminConfig() }).admin;
    const alice = admin.users[0]!.passwordHash;
    const checked: string[] = [];
    const auth = new Authenticator(admin, async (secret, hash) => {
      checked.push(hash);
      return verifyPassword(secret, hash);
    });
    expect(await auth.authenticate(basic(BASIC.name, 'wrong password'))).toBeUndefined();
    expect(checked).toEqual([alice]);
    expect(await auth.authenticate(basic('mallory', 'wrong password'))).toBeUndefined();
    expect(await auth.authenticate(basic('mallory', BASIC.password))).toBeUndefined();
    expect(checked).toHaveLength(3);
    const [dummy, again] = checked.slice(1) as [string, string];
    expect(dummy).not.toBe(alice);
    expect(again).toBe(dummy);
    expect(cost(dummy)).toBe(cost(alice));
    expect(await auth.authenticate(basic(BASIC.name, BASIC.password))).toMatchObject({ name: BASIC.name, via: 'basic' });
  });

  it('without any Basic user, at the cost postern hash-password uses', async () => {
    const checked: string[] = [];
    const auth = new Authenticator(validateConfig({ hostname: 'postern.test' }).admin, async (_secret, hash) => {
      checked.push(hash);
      return false;
    });
    expect(await auth.authenticate(basic('anyone', 'anything'))).toBeUndefined();
    expect(checked.map(cost)).toEqual([cost(await hashPassword('x'))]);
  });
});

describe('postern hash-api-key', () => {
  it('--generate prints a key once and a hash the config accepts and the API checks', async () => {
    const entry = join(process.cwd(), 'dist', 'cli', 'postern.cjs');
    const out = await new Promise<string>((resolve, reject) => execFile(process.execPath, [entry, 'hash-api-key', '--generate'], (err, stdout) => (err ? reject(err) : resolve(stdout))));
    const key = /^key: {2}(pst_[A-Za-z0-9_-]{43})$/m.exec(out)?.[1];
    const hash = /^hash: (scrypt\$32768\$8\$1\$\S+)$/m.exec(out)?.[1];
    expect(key && hash).toBeTruthy();
    const config = validateConfig({ hostname: 'postern.test', admin: { apiKeys: [{ name: 'gen', hash, role: 'operator' }] } });
    const auth = new Authenticator(config.admin);
    expect(await auth.authenticate({ 'x-api-key': key })).toEqual({ name: 'gen', role: 'operator', via: 'api-key' });
    expect(await auth.authenticate({ 'x-api-key': `${key}x` })).toBeUndefined();
  });

  it('a short key on stdin is refused', async () => {
    const entry = join(process.cwd(), 'dist', 'cli', 'postern.cjs');
    const code = await new Promise<number | null>((resolve) => {
      const child = execFile(process.execPath, [entry, 'hash-api-key']);
      child.stdin?.end('short\n');
      child.once('exit', resolve);
    });
    expect(code).toBe(2);
  });
});
