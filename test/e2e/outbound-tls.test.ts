import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestDns } from '../helpers/dns-server.js';
import { expectArchiveMatches } from '../helpers/archive-check.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { createTestCa, selfSigned } from '../helpers/pki.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

/** Each gateway's archive is checked as it stops (test/helpers/archive-check.ts). */
const checked = { afterStop: expectArchiveMatches };

/**
 * Outbound TLS levels against receiving MXs that cannot give what is required. Under
 * `verify` nothing may be sent in clear or to an unverified server; the log says why,
 * in RFC 8460 terms. Each MX is its own domain so one test cannot feed another.
 */
describe('outbound TLS levels', () => {
  const ca = createTestCa();
  const mxs: Record<string, TestMx> = {};
  let dns: TestDns;
  let gw: TestGateway | undefined;

  beforeAll(async () => {
    mxs.good = await new TestMx({ tls: ca.issue(['mx.good.test']) }).start();
    mxs.plain = await new TestMx().start();
    mxs.selfsigned = await new TestMx({ tls: selfSigned('mx.selfsigned.test') }).start();
    mxs.wrongname = await new TestMx({ tls: ca.issue(['mx.somebody-else.test']) }).start();
    mxs.expired = await new TestMx({ tls: ca.issue(['mx.expired.test'], { expired: true }) }).start();
    const zone: ConstructorParameters<typeof TestDns>[0] = {};
    for (const name of Object.keys(mxs)) {
      zone[`${name}.test`] = { MX: [{ exchange: `mx.${name}.test`, priority: 10 }] };
      zone[`mx.${name}.test`] = { A: ['127.0.0.1'] };
    }
    dns = await new TestDns(zone).start();
  });
  afterAll(async () => {
    for (const m of Object.values(mxs)) await m.stop();
    await dns.stop();
  });
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
  });

  /** MX delivery goes to port 25 normally; here each domain's MX port is a route override. */
  async function gateway(level: string): Promise<TestGateway> {
    const routes: Record<string, unknown> = {};
    for (const [name, mx] of Object.entries(mxs)) routes[`${name}.test`] = { nexthop: `mx.${name}.test:${mx.port}`, tls: level };
    gw = await startTestGateway({ delivery: { routes, dns: { servers: [dns.server] }, tls: { trust: [ca.caFile] } } }, undefined, checked);
    return gw;
  }

  it.each([
    ['plain', 'starttls-not-supported'],
    ['selfsigned', 'certificate-not-trusted'],
    ['wrongname', 'certificate-host-mismatch'],
    ['expired', 'certificate-expired'],
  ])('verify: %s MX gets nothing; the recipient is deferred with %s', async (name, failure) => {
    const g = await gateway('verify');
    const mx = mxs[name]!;
    const before = mx.messages.length;
    const commandsBefore = mx.commands.length;
    const r = await sendMail(g.port, { from: 'sender@client.test', to: [`patient@${name}.test`], raw: testMessage({ to: `patient@${name}.test` }) });
    expect(r.ok).toBe(true);
    const deferred = await g.waitForLog((l) => l.event === 'delivery.deferred' && l.to === `patient@${name}.test`);
    expect(deferred).toMatchObject({ dsn: '4.7.5', category: `tls:${failure}`, tls: { level: 'verify', verified: false, failure } });
    expect(String(deferred.response)).toMatch(/TLS|STARTTLS/);
    await new Promise((res) => setTimeout(res, 200));
    expect(mx.messages.length).toBe(before);
    // Not even the envelope: no MAIL FROM or RCPT TO reached this MX, in clear or otherwise.
    expect(mx.commands.slice(commandsBefore)).toEqual([]);
    // Still queued for a later attempt (the policy engine will move it to the portal).
    expect(g.gateway.queue.stats().depth).toBe(1);
  });

  it('verify: a properly certified MX receives the message over TLS', async () => {
    const g = await gateway('verify');
    const r = await sendMail(g.port, { from: 'sender@client.test', to: ['patient@good.test'], raw: testMessage() });
    expect(r.ok).toBe(true);
    const sent = await g.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'patient@good.test');
    expect(sent).toMatchObject({ tls: { level: 'verify', verified: true } });
    expect(mxs.good!.messages.at(-1)?.secure).toBe(true);
  });

  it('encrypt: a self-signed MX is used encrypted, and the log records it unverified', async () => {
    const g = await gateway('encrypt');
    await sendMail(g.port, { from: 'sender@client.test', to: ['patient@selfsigned.test'], raw: testMessage() });
    const sent = await g.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'patient@selfsigned.test');
    expect(sent).toMatchObject({ tls: { level: 'encrypt', verified: false, failure: 'certificate-not-trusted' } });
    expect(mxs.selfsigned!.messages.at(-1)?.secure).toBe(true);
    // The envelope went inside TLS too.
    expect(mxs.selfsigned!.commands.filter((c) => c.sessionId === mxs.selfsigned!.messages.at(-1)?.sessionId).every((c) => c.secure)).toBe(true);
  });

  it('encrypt: an MX without STARTTLS gets nothing', async () => {
    const g = await gateway('encrypt');
    const before = mxs.plain!.messages.length;
    const commandsBefore = mxs.plain!.commands.length;
    await sendMail(g.port, { from: 'sender@client.test', to: ['patient@plain.test'], raw: testMessage() });
    await g.waitForLog((l) => l.event === 'delivery.deferred' && l.to === 'patient@plain.test');
    expect(mxs.plain!.messages.length).toBe(before);
    expect(mxs.plain!.commands.slice(commandsBefore)).toEqual([]);
  });

  it('may: an MX without STARTTLS is used in clear (opportunistic), as configured', async () => {
    const g = await gateway('may');
    await sendMail(g.port, { from: 'sender@client.test', to: ['patient@plain.test'], raw: testMessage() });
    const sent = await g.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'patient@plain.test');
    expect((sent.tls as { version?: string }).version).toBeUndefined();
    expect(mxs.plain!.messages.at(-1)?.secure).toBe(false);
    // The record of commands does see clear text when there is some (so the checks above can fail).
    expect(mxs.plain!.commands.at(-1)).toMatchObject({ command: 'DATA', secure: false });
  });
});

describe('TLS capability cache during delivery', () => {
  it('remembers that an MX offered no STARTTLS and says so before the next attempt', async () => {
    const { startTestGateway } = await import('../helpers/gateway.js');
    const { TestMx } = await import('../helpers/mx-server.js');
    const plain = await new TestMx().start();
    const gw = await startTestGateway({ delivery: { routes: { 'plain.test': { nexthop: `127.0.0.1:${plain.port}`, tls: 'verify' } } } }, undefined, checked);
    try {
      await sendMail(gw.port, { from: 'sender@client.test', to: ['p@plain.test'], raw: testMessage() });
      const forecast = await gw.waitForLog((l) => l.event === 'tls.foreseen-failure');
      expect(forecast).toMatchObject({ level: 'info', tlsLevel: 'verify', lastSeen: { starttls: false, verdict: 'starttls-not-supported' } });
      expect(plain.messages).toHaveLength(0);
      expect(plain.commands).toEqual([]);
    } finally {
      await gw.stop();
      await plain.stop();
    }
  });
});
