import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../../src/api/loopback.js';
import { startAdminListener } from '../../src/api/start.js';
import { validateConfig } from '../../src/config/load.js';
import { hashPassword } from '../../src/ingress/password-hash.js';
import { parseMetrics, sample } from '../events/metrics-helpers.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { adminConfig, call, KEYS, startAdmin } from './admin-helpers.js';

/** One GET from a given loopback address (Linux routes all of 127.0.0.0/8 to lo). */
function getFrom(from: string, url: string, key: string): Promise<{ status: number; retryAfter?: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress: from, headers: { 'x-api-key': key } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

const WRONG = 'wrong-key-0123456789abcdefghijklmnopqrs';
const FLOOD = '127.0.0.2';
const OTHER = '127.0.0.3';

describe('admin authentication under a flood of wrong credentials', () => {
  const s = scenario();
  let gw: TestGateway;
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  let queue: string;
  beforeAll(async () => {
    // One key hashed at production cost: each wrong key is checked against it too, so checks take real time.
    const config = await adminConfig({ authLimit: { failures: 5, window: '1m' } });
    (config.apiKeys as unknown[]).push({ name: 'costly', hash: await hashPassword('costly-key-0123456789abcdefghijklmnopq', { N: 2 ** 15, r: 8, p: 1 }), role: 'read-only' });
    gw = await s.gateway({ admin: config });
    admin = await startAdmin(gw);
    queue = `${admin.url}/api/v1/queue`;
  });
  afterAll(async () => {
    await admin?.close();
  });

  it('a burst is checked a few at a time and the rest told to come back (503), while another address gets its turn; after 5 failures the address gets 429, whatever it sends', async () => {
    const burst = Array.from({ length: 60 }, () => getFrom(FLOOD, queue, WRONG));
    // A credential never seen before (not cached) from another address, sent during the burst.
    const other = getFrom(OTHER, queue, KEYS.ro);
    const answers = await Promise.all(burst);
    expect((await other).status).toBe(200);
    const count = (status: number) => answers.filter((a) => a.status === status).length;
    // Two checks at a time and four waiting per address: the rest were not queued at all.
    // On a loaded machine the burst arrives over a while and a check may end before the
    // last request comes, so a few more may be queued later; after five failures the
    // address is limited (429, no check). Never anything near one check per request.
    expect(count(401)).toBeLessThanOrEqual(5 + 6);
    expect(count(401)).toBeGreaterThanOrEqual(1);
    expect(count(503)).toBeGreaterThanOrEqual(30);
    expect(count(401) + count(503) + count(429)).toBe(60);
    expect(answers.find((a) => a.status === 503)?.retryAfter).toBe('1');

    // Sequential wrong keys: failures add up to the limit, then 429 without a check.
    let limited: { status: number; retryAfter?: string | undefined } | undefined;
    for (let i = 0; i < 6 && !limited; i++) {
      const r = await getFrom(FLOOD, queue, WRONG);
      if (r.status === 429) limited = r;
      else expect(r.status).toBe(401);
    }
    expect(limited?.status).toBe(429);
    expect(Number(limited?.retryAfter)).toBeGreaterThan(0);
    expect(Number(limited?.retryAfter)).toBeLessThanOrEqual(60);
    // Blocked means blocked: a valid key from that address waits too; other addresses do not.
    expect((await getFrom(FLOOD, queue, KEYS.ro)).status).toBe(429);
    expect((await getFrom(OTHER, queue, KEYS.ro)).status).toBe(200);
    // No credentials at all is not a failure (a client's first try before the challenge), and costs no check.
    expect((await call(queue)).status).toBe(401);

    const lines = gw.logs.filter((l) => l.event === 'api.call');
    const invalid = lines.filter((l) => l.authFailure === 'invalid').length;
    const rateLimited = lines.filter((l) => l.authFailure === 'rate-limited').length;
    expect(rateLimited).toBe(2);
    expect(lines.filter((l) => l.status === 429).every((l) => l.level === 'warn' && l.ip === FLOOD)).toBe(true);
    expect(lines.filter((l) => l.authFailure === 'missing')).toHaveLength(1);
    const m = parseMetrics((await call(`${admin.url}/metrics`)).text);
    expect(sample(m, 'postern_admin_auth_failures_total', { result: 'invalid' })).toBe(invalid);
    expect(sample(m, 'postern_admin_auth_failures_total', { result: 'rate-limited' })).toBe(rateLimited);
  });
});

/**
 * A name from /etc/hosts, other than localhost, that resolves to loopback addresses only
 * (e.g. the machine's own name): a listener on it stays on loopback, but by name it is
 * not known to be (a name could point anywhere), so it gets the cleartext warning.
 */
async function loopbackOnlyName(): Promise<string | undefined> {
  const hosts = await readFile('/etc/hosts', 'utf8').catch(() => '');
  const names = hosts.split('\n').flatMap((line) => {
    const [address, ...aliases] = line.replace(/#.*/, '').trim().split(/\s+/);
    return address && isLoopbackHost(address) ? aliases.filter((a) => a && !isLoopbackHost(a)) : [];
  });
  for (const name of names) {
    const addresses = await lookup(name, { all: true }).catch(() => []);
    if (addresses.length && addresses.every((a) => isLoopbackHost(a.address))) return name;
  }
  return undefined;
}

describe('an admin listener off loopback without TLS', () => {
  const s = scenario();

  it('admin.cleartext: warn (the default) logs admin.cleartext at every start on a host not known to be loopback, and not on 127.0.0.1', async (ctx) => {
    const name = await loopbackOnlyName();
    // Needs a host name that resolves to loopback only and is not "localhost" (Debian maps
    // the machine's own name to 127.0.1.1 in /etc/hosts). Skipped only on a developer
    // machine without one; CI must not pass by skipping.
    if (!name && process.env.CI === 'true') throw new Error('no host name in /etc/hosts that resolves to loopback only (CI=true: add the machine name on 127.0.1.1)');
    if (!name) return ctx.skip();
    const gw = await s.gateway({ admin: await adminConfig({ listen: `${name}:0` }) });
    const admin = await startAdmin(gw);
    try {
      expect(gw.events('admin.cleartext')).toEqual([expect.objectContaining({ level: 'warn', host: name, port: admin.port })]);
      expect((await call(`${admin.url}/healthz`)).status).toBe(200); // it is on loopback all the same
      const onLoopback = await startAdminListener({ ...gw.config, admin: { ...gw.config.admin, listen: { host: '127.0.0.1', port: 0 } } }, gw.dataDir, gw.gateway.operations.sources, gw.logger);
      await onLoopback?.close();
      expect(gw.events('admin.cleartext')).toHaveLength(1);
    } finally {
      await admin.close();
    }
  });

  it('admin.cleartext: refuse is a config error naming the key and the ways out; warn (the default) accepts it', () => {
    const base = { hostname: 'postern.test' };
    expect(() => validateConfig({ ...base, admin: { listen: '0.0.0.0:9025', cleartext: 'refuse' } })).toThrow(
      /admin\.listen: is not a loopback address and admin\.tls\.enabled is false: .*\(enable admin\.tls, listen on 127\.0\.0\.1, or set admin\.cleartext: warn\)/,
    );
    expect(validateConfig({ ...base, admin: { listen: '0.0.0.0:9025' } }).admin.cleartext).toBe('warn');
    expect(validateConfig({ ...base, admin: { listen: '0.0.0.0:9025', cleartext: 'refuse', tls: { enabled: true } } }).admin.listen.host).toBe('0.0.0.0');
    expect(validateConfig({ ...base, admin: { listen: '[::1]:9025', cleartext: 'refuse' } }).admin.listen.port).toBe(9025);
  });

  it('loopback is 127.0.0.0/8, ::1 and localhost only', () => {
    expect(['127.0.0.1', '127.9.9.9', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'].map(isLoopbackHost)).toEqual([true, true, true, true, true, true]);
    expect(['0.0.0.0', '::', '10.0.0.5', '::ffff:10.0.0.5', 'admin.example.org', '128.0.0.1'].map(isLoopbackHost)).toEqual([false, false, false, false, false, false]);
  });
});
