import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DeliveryDns } from '../../src/deliver/dns.js';
import { MtaSts } from '../../src/tls/mta-sts.js';
import { MemoryStsPolicies } from '../../src/tls/sts-policy-memory.js';
import { TestDns } from '../helpers/dns-server.js';
import { TestHttps } from '../helpers/https-server.js';
import { createTestCa } from '../helpers/pki.js';

const PATH = '/.well-known/mta-sts.txt';
const HOUR = 3_600_000;
const policy = (mx: string, maxAge: number) => `version: STSv1\r\nmode: enforce\r\nmx: ${mx}\r\nmax_age: ${maxAge}\r\n`;

/**
 * RFC 8461 §10.2: a policy in use is fetched again before it expires, so a domain mailed
 * regularly always has a fresh one and an attacker has no expiry to wait for. The
 * refresh runs in the background: the delivery goes on with the stored policy.
 */
describe('MTA-STS proactive refresh', () => {
  const ca = createTestCa();
  let dns: TestDns;
  let https: TestHttps;

  beforeAll(async () => {
    https = await new TestHttps(ca.issue(['mta-sts.fresh.test'])).start();
    dns = await new TestDns({ '_mta-sts.fresh.test': { TXT: ['v=STSv1; id=1;'] }, 'mta-sts.fresh.test': { A: ['127.0.0.1'] } }).start();
  });
  afterAll(async () => {
    await https.stop();
    await dns.stop();
  });

  it('a day-old policy (or one half through its max_age) is fetched again in the background; a failed refresh keeps it until max_age', async () => {
    https.routes.set(PATH, { body: policy('mx.fresh.test', 7 * 24 * 3600) });
    const resolver = new DeliveryDns([dns.server], 1000);
    const policies = new MemoryStsPolicies(10);
    const sts = new MtaSts({ resolve: (n, t) => resolver.resolve(n, t), trust: [ca.cert], port: https.port, timeoutMs: 1000, policies });
    const t0 = Date.now();
    expect((await sts.policyFor('fresh.test', t0)).source).toBe('fetched');
    expect((await sts.policyFor('fresh.test', t0 + 23 * HOUR)).source).toBe('cache');
    expect(sts.fetches).toBe(1);

    // A day later, same id: answered from the store at once, and fetched again behind it.
    https.routes.set(PATH, { body: policy('mx2.fresh.test', 7 * 24 * 3600) });
    const day = t0 + 25 * HOUR;
    expect(await sts.policyFor('fresh.test', day)).toMatchObject({ source: 'cache', policy: { mx: ['mx.fresh.test'] } });
    await vi.waitFor(async () => expect(await policies.get('fresh.test', day)).toMatchObject({ mx: ['mx2.fresh.test'], fetchedAt: day }));
    expect(sts.fetches).toBe(2);

    // The policy host fails the next refresh: the stored policy stays, and the refresh is
    // not tried again on every message.
    https.routes.set(PATH, { status: 500, body: 'down' });
    const twoDays = day + 25 * HOUR;
    expect((await sts.policyFor('fresh.test', twoDays)).source).toBe('cache');
    await vi.waitFor(() => expect(sts.fetches).toBe(3));
    expect((await sts.policyFor('fresh.test', twoDays + 60_000)).source).toBe('cache');
    expect(await policies.get('fresh.test', twoDays + 60_000)).toMatchObject({ mx: ['mx2.fresh.test'], fetchedAt: day });
    expect(sts.fetches).toBe(3);
  });

  it('a short max_age is refreshed once half of it has passed', async () => {
    https.routes.set(PATH, { body: policy('mx.fresh.test', 3600) });
    const resolver = new DeliveryDns([dns.server], 1000);
    const sts = new MtaSts({ resolve: (n, t) => resolver.resolve(n, t), trust: [ca.cert], port: https.port, timeoutMs: 1000 });
    const t0 = Date.now();
    await sts.policyFor('fresh.test', t0);
    await sts.policyFor('fresh.test', t0 + 29 * 60_000);
    expect(sts.fetches).toBe(1);
    await sts.policyFor('fresh.test', t0 + 31 * 60_000);
    await vi.waitFor(() => expect(sts.fetches).toBe(2));
  });
});
