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
    https = await new TestHttps(ca.issue(['mta-sts.enforced.test', 'mta-sts.mismatch.test', 'mta-sts.badcert.test', 'mta-sts.testing.test'])).start();
    goodMx = await s.mx({ tls: ca.issue(['mx.enforced.test', 'mx.mismatch.test', 'mx.testing.test']) });
    selfSignedMx = await s.mx({ tls: selfSigned('mx.badcert.test') });
    dns = await new TestDns({}).start();
    for (const d of ['enforced', 'mismatch', 'badcert', 'testing']) {
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

  async function deliverTo(domain: string, mx: TestMx, sts: string) {
    https.routes.set('/.well-known/mta-sts.txt', { body: sts });
    const gw = await s.gateway({
      delivery: { mxPort: mx.port, dns: { servers: [dns.server] }, tls: { default: 'may', trust: [ca.caFile] }, mtaSts: { port: https.port, timeout: '2s' } },
    });
    const before = mx.messages.length;
    const r = await sendMail(gw.port, { from: 'sender@client.test', to: [`dr@${domain}`], raw: testMessage({ subject: `to ${domain}` }) });
    expect(r.ok).toBe(true);
    const line = await gw.waitForLog((l) => (l.event === 'delivery.sent' || l.event === 'delivery.deferred') && l.to === `dr@${domain}`);
    await new Promise((res) => setTimeout(res, 200));
    return { gw, line, arrived: mx.messages.length - before };
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

  it('enforce, certificate not trusted: nothing sent', async () => {
    const { line, arrived } = await deliverTo('badcert.test', selfSignedMx, policy('enforce', ['mx.badcert.test']));
    expect(line).toMatchObject({ event: 'delivery.deferred', category: 'tls:certificate-not-trusted', tls: { policy: 'mta-sts-enforce', level: 'verify' } });
    expect(arrived).toBe(0);
  });

  it('testing mode: delivered, and the policy failure is logged', async () => {
    const { gw, line, arrived } = await deliverTo('testing.test', goodMx, policy('testing', ['mx.elsewhere.test']));
    expect(line).toMatchObject({ event: 'delivery.sent', tls: { policy: 'mta-sts-testing' } });
    expect(arrived).toBe(1);
    expect(gw.events('tls.mta-sts-testing')[0]).toMatchObject({ domain: 'testing.test', mx: ['mx.testing.test'] });
  });

  it('a text/html policy is refused: delivery goes on without MTA-STS and the failure is recorded', async () => {
    https.routes.set('/.well-known/mta-sts.txt', { body: policy('enforce', ['mx.nowhere.test']), contentType: 'text/html' });
    const gw = await s.gateway({
      delivery: { mxPort: goodMx.port, dns: { servers: [dns.server] }, tls: { default: 'may', trust: [ca.caFile] }, mtaSts: { port: https.port, timeout: '2s' } },
    });
    const r = await sendMail(gw.port, { from: 'sender@client.test', to: ['dr@enforced.test'], raw: testMessage() });
    expect(r.ok).toBe(true);
    const line = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'dr@enforced.test');
    expect((line.tls as { policy?: string }).policy).toBeUndefined();
  });
});
