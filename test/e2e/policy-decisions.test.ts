import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDns } from '../helpers/dns-server.js';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

const POLICY = `
consumerDomains: [consumer.test]
defaults: { methods: [smime, pgp, tls, portal], tls: verify, onNoMethod: portal }
domains:
  legacy.test: { methods: [tls], tls: may, onNoMethod: defer }
  client.test: { methods: [tls], tls: may }   # our own domain (bounce reports)
recipients:
  board@legacy.test: { methods: [tls], tls: verify, onNoMethod: bounce }
  vip@legacy.test: { methods: [smime], onNoMethod: bounce }
rules:
  - id: secure-tag
    match: { subjectTag: true }
    action: { methods: [smime, pgp, portal], onNoMethod: portal }
  - id: phi-detected
    match: { detectorScore: true }
    action: { methods: [smime, pgp, portal] }
  - id: consumer-mail
    match: { consumerDomain: true }
    action: { methods: [smime, pgp, portal] }
`;

describe('policy decisions end to end', () => {
  const s = scenario();
  const ca = createTestCa();
  let dns: TestDns;
  let verified: TestMx;
  let legacy: TestMx;
  let consumer: TestMx;
  let senderMx: TestMx;
  let gw: TestGateway;

  beforeAll(async () => {
    verified = await s.mx({ tls: ca.issue(['mx.verified.test']) });
    legacy = await s.mx(); // no STARTTLS at all
    consumer = await s.mx({ tls: ca.issue(['mx.consumer.test']) });
    senderMx = await s.mx({ tls: ca.issue(['127.0.0.1']) }); // reports go over verified TLS (rule dsn)
    dns = await new TestDns({
      'mx.verified.test': { A: ['127.0.0.1'] },
      'mx.legacy.test': { A: ['127.0.0.1'] },
      'mx.consumer.test': { A: ['127.0.0.1'] },
    }).start();
  });
  afterAll(() => dns.stop());

  async function gateway(policyText = POLICY): Promise<TestGateway> {
    const file = join(mkdtempSync(join(tmpdir(), 'postern-policy-e2e-')), 'policy.yaml');
    writeFileSync(file, policyText);
    gw = await s.gateway({
      policy: { file },
      delivery: {
        dns: { servers: [dns.server] },
        // Route levels stay permissive: the policy sets the floor per recipient.
        tls: { default: 'may', trust: [ca.caFile] },
        routes: {
          'verified.test': `mx.verified.test:${verified.port}`,
          'legacy.test': `mx.legacy.test:${legacy.port}`,
          'consumer.test': `mx.consumer.test:${consumer.port}`,
          'client.test': { nexthop: `127.0.0.1:${senderMx.port}`, tls: 'none' },
        },
      },
    });
    return gw;
  }

  it('one message, three recipients, three decisions: verified TLS, clear TLS-may, and the portal', async () => {
    const g = await gateway();
    const r = await sendMail(g.port, { from: 'sender@client.test', to: ['dr@verified.test', 'clinic@legacy.test', 'patient@consumer.test'], raw: testMessage({ subject: 'Appointment reminder' }) });
    expect(r.ok).toBe(true);
    await verified.waitFor(1);
    await legacy.waitFor(1);
    await consumer.waitFor(1); // the portal notice
    const viaPortal = await g.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'patient@consumer.test');

    expect(verified.messages[0]).toMatchObject({ rcptTo: ['dr@verified.test'], secure: true });
    expect(legacy.messages[0]).toMatchObject({ rcptTo: ['clinic@legacy.test'], secure: false });
    // The consumer mailbox got a notice with a link, never the message itself.
    const notice = consumer.messages[0]!.raw.toString();
    expect(notice).toMatch(/^Subject: Secure message from /m);
    expect(notice).toMatch(/https:\/\/postern\.test:\d+\/m\/[A-Za-z0-9_-]{43}/);
    expect(notice).not.toContain('Appointment reminder');

    const sent = g.events('delivery.sent');
    expect(sent.find((l) => l.to === 'dr@verified.test')).toMatchObject({ method: 'tls', rule: 'default', tls: { level: 'verify', verified: true } });
    expect(sent.find((l) => l.to === 'clinic@legacy.test')).toMatchObject({ method: 'tls', rule: 'domain:legacy.test' });
    expect(viaPortal).toMatchObject({ method: 'portal', rule: 'consumer-mail', category: 'portal' });

    const decisions = g.events('policy.decision').filter((d) => d.rule !== 'portal-notice');
    expect(decisions.map((d) => [d.to, d.rule, d.method ?? null])).toEqual([
      ['dr@verified.test', 'default', 'tls'],
      ['clinic@legacy.test', 'domain:legacy.test', 'tls'],
      ['patient@consumer.test', 'consumer-mail', 'portal'],
    ]);
  });

  it('PHI in the body sends the message through the portal; the log names detectors, never values', async () => {
    const g = await gateway();
    const r = await sendMail(g.port, { from: 'sender@client.test', to: ['dr@verified.test'], raw: testMessage({ subject: 'Follow-up', body: 'Patient SSN 524-12-3456, DOB: 03/14/1975.' }) });
    expect(r.ok).toBe(true);
    const viaPortal = await g.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'dr@verified.test' && l.method === 'portal');
    expect(viaPortal).toMatchObject({ rule: 'phi-detected', category: 'portal' });
    const inspected = g.events('inspect.done')[0]!;
    expect(inspected.detectors).toEqual([
      { detector: 'ssn', count: 1 },
      { detector: 'dob', count: 1 },
    ]);
    expect(JSON.stringify(g.logs)).not.toContain('524-12-3456');
    expect(JSON.stringify(g.logs)).not.toContain('03/14/1975');
    expect(verified.messages.filter((m) => m.raw.toString().includes('Follow-up'))).toHaveLength(0);
  });

  it('a recipient whose policy demands verified TLS is never sent in clear, though its domain allows it', async () => {
    const g = await gateway();
    const before = senderMx.messages.length;
    const r = await sendMail(g.port, { from: 'sender@client.test', to: ['board@legacy.test'], raw: testMessage({ subject: 'Board pack' }) });
    expect(r.ok).toBe(true);
    // board@legacy.test requires verified TLS; legacy.test's MX has no STARTTLS.
    const deferred = await g.waitForLog((l) => l.event === 'delivery.deferred' && l.to === 'board@legacy.test');
    expect(deferred).toMatchObject({ rule: 'recipient:board@legacy.test', category: 'tls:starttls-not-supported', tls: { level: 'verify' } });
    expect(legacy.messages.filter((m) => m.raw.toString().includes('Board pack'))).toHaveLength(0);
    expect(senderMx.messages.length).toBe(before);
  });

  it('a recipient whose required protection is impossible and whose policy says bounce gets a DSN', async () => {
    const g = await gateway();
    const before = senderMx.messages.length;
    const r = await sendMail(g.port, { from: 'sender@client.test', to: ['vip@legacy.test'], raw: testMessage({ subject: 'For the VIP' }) });
    expect(r.ok).toBe(true);
    const bounced = await g.waitForLog((l) => l.event === 'delivery.bounced' && l.to === 'vip@legacy.test');
    expect(bounced).toMatchObject({ rule: 'recipient:vip@legacy.test', dsn: '5.7.10', category: 'policy' });
    await senderMx.waitFor(before + 1);
    const report = senderMx.messages.at(-1)!.raw.toString();
    expect(report).toMatch(/^Final-Recipient: rfc822; vip@legacy\.test$/m);
    expect(report).toMatch(/^Status: 5\.7\.10$/m);
    expect(legacy.messages.filter((m) => m.raw.toString().includes('For the VIP'))).toHaveLength(0);
  });

  it('removes the [secure] tag before delivery when the policy lets a tagged message go over verified TLS', async () => {
    const g = await gateway(`${POLICY.replace('action: { methods: [smime, pgp, portal], onNoMethod: portal }', 'action: { methods: [tls], tls: verify, onNoMethod: defer }')}`);
    const r = await sendMail(g.port, { from: 'sender@client.test', to: ['dr@verified.test'], raw: testMessage({ subject: '[SECURE] Results for review' }) });
    expect(r.ok).toBe(true);
    await g.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'dr@verified.test');
    const got = verified.messages.at(-1)!.raw.toString();
    expect(got).toMatch(/^Subject: Results for review\r$/m);
    expect(got).not.toMatch(/secure\]/i);
    expect(g.events('delivery.sent').at(-1)).toMatchObject({ rule: 'secure-tag', method: 'tls' });
  });

  it('a MIME bomb fails cleanly: bounced with a reason, nothing delivered', async () => {
    const g = await gateway();
    let nested = 'Content-Type: text/plain\r\n\r\nboom\r\n';
    for (let i = 0; i < 40; i++) nested = `Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n${nested}\r\n--n${i}--\r\n`;
    const before = senderMx.messages.length;
    const r = await sendMail(g.port, { from: 'sender@client.test', to: ['dr@verified.test'], raw: `From: a@client.test\r\nSubject: bomb\r\nMIME-Version: 1.0\r\n${nested}` });
    expect(r.ok).toBe(true);
    const bounced = await g.waitForLog((l) => l.event === 'delivery.bounced' && l.to === 'dr@verified.test');
    expect(bounced).toMatchObject({ dsn: '5.6.0', category: 'inspect' });
    expect(String(bounced.response)).toMatch(/nested deeper than 20 levels/);
    await senderMx.waitFor(before + 1);
  });
});
