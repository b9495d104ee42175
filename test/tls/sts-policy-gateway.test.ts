import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TestDns } from '../helpers/dns-server.js';
import { TestHttps } from '../helpers/https-server.js';
import type { TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

/** Room in the gateway's MemoryCache (10,000 in production): the same eviction, with a few messages instead of 10,000. */
const CACHE_ENTRIES = 10;
/** Domains without MTA-STS mailed after the policy: each writes a "no policy" and a TLS capability entry. */
const FILL_DOMAINS = 15;

vi.mock('../../src/common/shared-cache.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/common/shared-cache.js')>();
  class SmallMemoryCache extends real.MemoryCache {
    constructor() {
      super(CACHE_ENTRIES);
    }
  }
  return { ...real, MemoryCache: SmallMemoryCache };
});

/**
 * End to end through a gateway with the fs queue: held.test publishes an enforce policy
 * (mx: mx.held.test). Once it is cached, an attacker answers its _mta-sts TXT query
 * SERVFAIL, makes the policy host unreachable and forges its MX (mx.evil.test). The
 * stored policy must still hold the message to mx.held.test (RFC 8461 §5.1) — after other
 * cache traffic filled the shared cache, and after a restart.
 */
describe('a stored MTA-STS policy holds mail to its MX list when discovery is blocked', () => {
  const s = scenario({ checkArchive: false });
  const ca = createTestCa();
  let dns: TestDns;
  let https: TestHttps;
  let mx: TestMx;

  beforeEach(async () => {
    https = await new TestHttps(ca.issue(['mta-sts.held.test'])).start();
    https.routes.set('/.well-known/mta-sts.txt', { body: 'version: STSv1\r\nmode: enforce\r\nmx: mx.held.test\r\nmax_age: 604800\r\n' });
    mx = await s.mx({ tls: ca.issue(['mx.held.test', 'mx.evil.test']) });
    dns = await new TestDns({
      'held.test': { MX: [{ exchange: 'mx.held.test', priority: 10 }] },
      'mx.held.test': { A: ['127.0.0.1'] },
      '_mta-sts.held.test': { TXT: ['v=STSv1; id=20261201;'] },
      'mta-sts.held.test': { A: ['127.0.0.1'] },
      'mx.evil.test': { A: ['127.0.0.1'] },
    }).start();
    for (let i = 0; i < FILL_DOMAINS; i++) {
      dns.zone[`fill${i}.test`] = { MX: [{ exchange: `mx.fill${i}.test`, priority: 10 }] };
      dns.zone[`mx.fill${i}.test`] = { A: ['127.0.0.1'] };
    }
  });
  afterEach(async () => {
    await https.stop();
    await dns.stop();
  });

  const overrides = () => ({ delivery: { mxPort: mx.port, dns: { servers: [dns.server] }, tls: { default: 'may', trust: [ca.caFile] }, mtaSts: { port: https.port, timeout: '2s' } } });

  /** Sends one message and returns the first delivery line of each recipient, and what reached the MX. */
  async function send(gw: TestGateway, to: string[], subject: string) {
    const before = mx.messages.length;
    const logged = gw.logs.length;
    expect((await sendMail(gw.port, { from: 'sender@client.test', to, raw: testMessage({ subject }) })).ok).toBe(true);
    // Lines of this message only: an earlier one to the same recipient is no answer.
    const isLine = (l: Record<string, unknown>) => (l.event === 'delivery.sent' || l.event === 'delivery.deferred') && gw.logs.indexOf(l) >= logged;
    const lines = await Promise.all(to.map((rcpt) => gw.waitForLog((l) => isLine(l) && l.to === rcpt)));
    await new Promise((r) => setTimeout(r, 200));
    return { lines, arrived: mx.messages.slice(before).filter((m) => m.raw.toString().includes(`Subject: ${subject}`)).length };
  }

  /** The attacker on the path: TXT SERVFAIL, policy host gone, MX forged. */
  async function attack() {
    dns.zone['_mta-sts.held.test'] = { SERVFAIL: true };
    await https.stop();
    dns.zone['held.test'] = { MX: [{ exchange: 'mx.evil.test', priority: 10 }] };
  }

  function expectHeld(line: Record<string, unknown> | undefined) {
    expect(line).toMatchObject({ event: 'delivery.deferred', category: 'tls:validation-failure', tls: { policy: 'mta-sts-enforce', stsFailure: 'sts-policy-fetch-error' } });
    expect(String(line?.response)).toMatch(/no MX of held\.test \(mx\.evil\.test\) is allowed by its MTA-STS policy \(mx: mx\.held\.test\); nothing sent/);
  }

  it('after other domains filled the shared cache', async () => {
    const gw = await s.gateway(overrides());
    const first = await send(gw, ['dr@held.test'], 'policy learnt');
    expect(first.lines[0]).toMatchObject({ event: 'delivery.sent', tls: { policy: 'mta-sts-enforce', verified: true } });
    // Mail to domains without MTA-STS: more cache writes than the cache holds.
    const fill = await send(gw, Array.from({ length: FILL_DOMAINS }, (_, i) => `u@fill${i}.test`), 'fill');
    expect(fill.lines.every((l) => l.event === 'delivery.sent')).toBe(true);

    await attack();
    const { lines, arrived } = await send(gw, ['dr@held.test'], 'under attack');
    expectHeld(lines[0]);
    expect(arrived).toBe(0);
    expect(gw.events('tls.mta-sts-failure').at(-1)).toMatchObject({ domain: 'held.test', policySource: 'cache-after-failure', mode: 'enforce', policyId: '20261201' });
  });

  it('after a restart (policies are kept under dataDir)', async () => {
    const first = await startTestGateway(overrides());
    let second: TestGateway | undefined;
    try {
      const learnt = await send(first, ['dr@held.test'], 'policy learnt');
      expect(learnt.lines[0]).toMatchObject({ event: 'delivery.sent', tls: { policy: 'mta-sts-enforce' } });
      await first.gateway.stop(); // its dataDir stays for the next start
      second = await startTestGateway(overrides(), first.dataDir);

      await attack();
      const { lines, arrived } = await send(second, ['dr@held.test'], 'under attack');
      expectHeld(lines[0]);
      expect(arrived).toBe(0);
    } finally {
      await (second ?? first).stop();
    }
  });
});
