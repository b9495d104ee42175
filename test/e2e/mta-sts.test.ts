import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDns } from '../helpers/dns-server.js';
import { TestHttps } from '../helpers/https-server.js';
import { createTestCa, selfSigned } from '../helpers/pki.js';
import { scenario } from '../helpers/scenario.js';
import type { TestMx } from '../helpers/mx-server.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

const policy = (mode: string, mx: string[]) => `version: STSv1\r\nmode: ${mode}\r\n${mx.map((m) => `mx: ${m}\r\n`).join('')}max_age: 86400\r\n`;

/**
 * MTA-STS end to end: a local DNS server publishes MX and _mta-sts records, a local HTTPS
 * server the policies. The gateway's own policy asks only for `may`, so everything
 * stricter here comes from the recipient domain's MTA-STS policy.
 */
describe('MTA-STS during delivery', () => {
  const s = scenario();
  const ca = createTestCa();
  let dns: TestDns;
  let https: TestHttps;
  let goodMx: TestMx;
  let selfSignedMx: TestMx;

  beforeAll(async () => {
    https = await new TestHttps(ca.issue(['mta-sts.enforced.test', 'mta-sts.mismatch.test', 'mta-sts.badcert.test', 'mta-sts.testing.test', 'mta-sts.redirect.test', 'mta-sts.cached.test', 'mta-sts.testingbad.test', 'mta-sts.xn--bcher-kva.test'])).start();
    goodMx = await s.mx({ tls: ca.issue(['mx.enforced.test', 'mx.mismatch.test', 'mx.testing.test', 'mx.redirect.test', 'mx.cached.test', 'mx2.cached.test', 'mx.nopolicy.test', 'mx.xn--bcher-kva.test']) });
    selfSignedMx = await s.mx({ tls: selfSigned('mx.badcert.test') });
    dns = await new TestDns({}).start();
    for (const d of ['enforced', 'mismatch', 'badcert', 'testing', 'redirect', 'cached', 'testingbad', 'xn--bcher-kva']) {
      dns.zone[`${d}.test`] = { MX: [{ exchange: `mx.${d}.test`, priority: 10 }] };
      dns.zone[`mx.${d}.test`] = { A: ['127.0.0.1'] };
      dns.zone[`_mta-sts.${d}.test`] = { TXT: ['v=STSv1; id=20261123;'] };
      dns.zone[`mta-sts.${d}.test`] = { A: ['127.0.0.1'] };
    }
  });
  afterAll(async () => {
    await https.stop();
    await dns.stop();
  });

  const gatewayFor = (mx: TestMx, extra: Record<string, unknown> = {}) =>
    s.gateway({ delivery: { mxPort: mx.port, dns: { servers: [dns.server] }, tls: { default: 'may', trust: [ca.caFile] }, mtaSts: { port: https.port, timeout: '2s' } }, ...extra });

  /** Sends one message to dr@<domain> and waits for its first delivery line. */
  async function sendTo(gw: Awaited<ReturnType<typeof gatewayFor>>, mx: TestMx, domain: string, skip = 0) {
    const before = mx.messages.length;
    const r = await sendMail(gw.port, { from: 'sender@client.test', to: [`dr@${domain}`], raw: testMessage({ subject: `to ${domain}` }) });
    expect(r.ok).toBe(true);
    await gw.waitForLog(() => gw.logs.filter((l) => (l.event === 'delivery.sent' || l.event === 'delivery.deferred') && l.to === `dr@${domain}`).length > skip);
    const line = gw.logs.filter((l) => (l.event === 'delivery.sent' || l.event === 'delivery.deferred') && l.to === `dr@${domain}`)[skip]!;
    await new Promise((res) => setTimeout(res, 200));
    return { line, arrived: mx.messages.length - before };
  }

  async function deliverTo(domain: string, mx: TestMx, sts: string) {
    https.routes.set('/.well-known/mta-sts.txt', { body: sts });
    const gw = await gatewayFor(mx);
    return { gw, ...(await sendTo(gw, mx, domain)) };
  }

  it('enforce, MX in the policy, valid certificate: delivered with verified TLS', async () => {
    const { line, arrived } = await deliverTo('enforced.test', goodMx, policy('enforce', ['mx.enforced.test']));
    expect(line).toMatchObject({ event: 'delivery.sent', tls: { policy: 'mta-sts-enforce', level: 'verify', verified: true } });
    expect(arrived).toBe(1);
  });

  it('enforce, MX not in the policy: nothing sent', async () => {
    const { line, arrived } = await deliverTo('mismatch.test', goodMx, policy('enforce', ['mx.other-provider.test']));
    expect(line).toMatchObject({ event: 'delivery.deferred', category: 'tls:validation-failure' });
    expect(String(line.response)).toMatch(/is allowed by its MTA-STS policy \(mx: mx.other-provider.test\); nothing sent/);
    expect(arrived).toBe(0);
  });

  it('an internationalised domain: its policy is looked up in A-labels and enforced (smtp-server hands over U-labels)', async () => {
    // smtp-server hands over "bücher.test" for "xn--bcher-kva.test"; discovery and the
    // policy host's certificate are in A-labels. Asked in U-labels, the fetch failed its
    // certificate check and the message went in clear to an MX the policy does not list.
    https.routes.set('/.well-known/mta-sts.txt', { body: policy('enforce', ['mx.other-provider.test']) });
    const gw = await gatewayFor(goodMx);
    const before = goodMx.messages.length;
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['dr@xn--bcher-kva.test'], raw: testMessage({ subject: 'idn' }) })).ok).toBe(true);
    const line = await gw.waitForLog((l) => l.event === 'delivery.sent' || l.event === 'delivery.deferred');
    expect(line).toMatchObject({ event: 'delivery.deferred', category: 'tls:validation-failure' });
    expect(String(line.response)).toMatch(/MTA-STS policy \(mx: mx.other-provider.test\); nothing sent/);
    await new Promise((res) => setTimeout(res, 200));
    expect(goodMx.messages.length - before).toBe(0);
  });

  it('enforce, certificate not trusted: nothing sent', async () => {
    const { line, arrived } = await deliverTo('badcert.test', selfSignedMx, policy('enforce', ['mx.badcert.test']));
    expect(line).toMatchObject({ event: 'delivery.deferred', category: 'tls:certificate-not-trusted', tls: { policy: 'mta-sts-enforce', level: 'verify' } });
    expect(arrived).toBe(0);
  });

  it('testing mode: delivered, and the policy failure is logged', async () => {
    const { gw, line, arrived } = await deliverTo('testing.test', goodMx, policy('testing', ['mx.elsewhere.test']));
    expect(line).toMatchObject({ event: 'delivery.sent', tls: { policy: 'mta-sts-testing' } });
    expect(arrived).toBe(1);
    expect(gw.events('tls.mta-sts-testing')[0]).toMatchObject({ domain: 'testing.test', result: 'validation-failure', mx: ['mx.testing.test'] });
  });

  it('testing mode, certificate not trusted: delivered, and the failure is logged with its RFC 8460 type', async () => {
    const { gw, line, arrived } = await deliverTo('testingbad.test', selfSignedMx, policy('testing', ['mx.testingbad.test']));
    expect(line).toMatchObject({ event: 'delivery.sent', tls: { policy: 'mta-sts-testing', level: 'may', verified: false, failure: 'certificate-not-trusted' } });
    expect(arrived).toBe(1);
    expect(gw.events('tls.mta-sts-testing')).toEqual([expect.objectContaining({ domain: 'testingbad.test', result: 'certificate-not-trusted', relay: expect.stringMatching(/^mx\.testingbad\.test\[127\.0\.0\.1\]/) })]);
  });

  it('a text/html policy is refused: delivery goes on without MTA-STS and the failure is recorded', async () => {
    https.routes.set('/.well-known/mta-sts.txt', { body: policy('enforce', ['mx.nowhere.test']), contentType: 'text/html' });
    const gw = await gatewayFor(goodMx);
    const { line } = await sendTo(gw, goodMx, 'enforced.test');
    expect(line).toMatchObject({ event: 'delivery.sent', tls: { policy: 'default', level: 'may', stsFailure: 'sts-policy-invalid' } });
    expect(gw.events('tls.mta-sts-failure')).toEqual([
      expect.objectContaining({ domain: 'enforced.test', result: 'sts-policy-invalid', policySource: 'none', detail: expect.stringMatching(/not text\/plain/) }),
    ]);
  });

  it('a redirected policy is refused: delivery goes on without MTA-STS and the failure is recorded', async () => {
    https.routes.set('/.well-known/mta-sts.txt', { status: 301, location: `https://mta-sts.enforced.test:${https.port}/.well-known/mta-sts.txt`, body: policy('enforce', ['mx.nowhere.test']) });
    const gw = await gatewayFor(goodMx);
    const asked = https.requests.length;
    const { line, arrived } = await sendTo(gw, goodMx, 'redirect.test');
    expect(line).toMatchObject({ event: 'delivery.sent', tls: { policy: 'default', stsFailure: 'sts-policy-fetch-error' } });
    expect(arrived).toBe(1);
    expect(gw.events('tls.mta-sts-failure')).toEqual([expect.objectContaining({ domain: 'redirect.test', result: 'sts-policy-fetch-error', policySource: 'none', detail: expect.stringMatching(/HTTP 301/) })]);
    // Only the policy host was asked: the redirect was not followed.
    expect(https.requests.slice(asked)).toEqual(['mta-sts.redirect.test/.well-known/mta-sts.txt']);
  });

  it('a cached enforce policy survives a failed re-fetch and still refuses an MX it does not list', async () => {
    https.routes.set('/.well-known/mta-sts.txt', { body: policy('enforce', ['mx.cached.test']) });
    const gw = await gatewayFor(goodMx);
    expect((await sendTo(gw, goodMx, 'cached.test')).line).toMatchObject({ event: 'delivery.sent', tls: { policy: 'mta-sts-enforce', verified: true } });
    // The domain announces a new policy that cannot be fetched, and moves its MX elsewhere.
    dns.zone['_mta-sts.cached.test'] = { TXT: ['v=STSv1; id=20261124;'] };
    https.routes.set('/.well-known/mta-sts.txt', { status: 500, body: 'down' });
    dns.zone['cached.test'] = { MX: [{ exchange: 'mx2.cached.test', priority: 10 }] };
    dns.zone['mx2.cached.test'] = { A: ['127.0.0.1'] };
    const { line, arrived } = await sendTo(gw, goodMx, 'cached.test', 1);
    expect(line).toMatchObject({ event: 'delivery.deferred', category: 'tls:validation-failure', tls: { policy: 'mta-sts-enforce', stsFailure: 'sts-policy-fetch-error' } });
    expect(String(line.response)).toMatch(/no MX of cached\.test \(mx2\.cached\.test\) is allowed by its MTA-STS policy \(mx: mx\.cached\.test\); nothing sent/);
    expect(arrived).toBe(0);
    expect(gw.events('tls.mta-sts-failure')[0]).toMatchObject({ domain: 'cached.test', result: 'sts-policy-fetch-error', policySource: 'cache-after-failure', policyId: '20261123', mode: 'enforce', detail: expect.stringMatching(/HTTP 500/) });
  });

  it('a decision that requires MTA-STS, for a domain without a policy: held, or the portal when onNoMethod says so', async () => {
    dns.zone['nopolicy.test'] = { MX: [{ exchange: 'mx.nopolicy.test', priority: 10 }] };
    dns.zone['mx.nopolicy.test'] = { A: ['127.0.0.1'] };
    const dir = mkdtempSync(join(tmpdir(), 'postern-sts-policy-'));
    writeFileSync(
      join(dir, 'policy.yaml'),
      [
        'defaults: { methods: [tls], tls: may, onNoMethod: defer }',
        'recipients:',
        '  "held@nopolicy.test": { tls: mta-sts, onNoMethod: defer }',
        '  "portal@nopolicy.test": { tls: mta-sts, onNoMethod: portal }',
      ].join('\n'),
    );
    const gw = await gatewayFor(goodMx, { policy: { file: join(dir, 'policy.yaml') } });
    const before = goodMx.messages.length;
    const r = await sendMail(gw.port, { from: 'sender@client.test', to: ['held@nopolicy.test', 'portal@nopolicy.test'], raw: testMessage({ subject: 'needs MTA-STS' }) });
    expect(r.ok).toBe(true);
    const held = await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.to === 'held@nopolicy.test');
    expect(held).toMatchObject({ dsn: '4.7.5', category: 'tls:no-mta-sts-policy', rule: 'recipient:held@nopolicy.test', tls: { policy: 'rule:recipient:held@nopolicy.test', level: 'verify' } });
    expect(String(held.response)).toMatch(/policy requires MTA-STS for nopolicy\.test: no MTA-STS policy in enforce mode/);
    const moved = await gw.waitForLog((l) => l.event === 'portal.fallback' && l.to === 'portal@nopolicy.test');
    expect(moved).toMatchObject({ reason: 'tls:no-mta-sts-policy' });
    // What reached the MX is the portal notice (a link), never the message itself.
    await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'portal@nopolicy.test');
    const arrived = goodMx.messages.slice(before);
    expect(arrived.map((m) => m.raw.toString()).join('\n')).not.toContain('Hello from the Postern test suite');
  });
});
