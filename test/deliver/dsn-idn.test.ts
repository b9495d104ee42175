import { afterEach, describe, expect, it } from 'vitest';
import { buildDsn } from '../../src/deliver/dsn.js';
import type { Envelope } from '../../src/types.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TestMx, type MxOptions } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

// smtp-server hands every envelope domain over as U-labels (bücher.example), even when the
// client wrote A-labels (xn--bcher-kva.example). The bounce report must still be 7-bit:
// a report refused by the sender's server cannot be reported in turn, it is lost.

const stops: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s.stop().catch(() => undefined);
});

async function mx(o: MxOptions = {}): Promise<TestMx> {
  const m = await new TestMx(o).start();
  stops.push(m);
  return m;
}

// Reports go to the sender over verified TLS (rule dsn): the sender's MX has a certificate the gateway trusts.
const senderCa = createTestCa('Sender MX CA');

async function gateway(routes: Record<string, string>): Promise<TestGateway> {
  const g = await startTestGateway({
    delivery: { tls: { trust: [senderCa.caFile] }, routes: Object.fromEntries(Object.entries(routes).map(([domain, nexthop]) => [domain, { nexthop, tls: 'none' }])) },
  });
  stops.push(g);
  return g;
}

describe('bounce report to a sender with an internationalised domain', () => {
  it('is 7-bit (To: and Final-Recipient with A-labels) and reaches a server without 8BITMIME or SMTPUTF8', async () => {
    const dest = await mx({ rcptReply: () => [550, '5.1.1 User unknown'] });
    const sender = await mx({ eightBitMime: false, smtputf8: false, tls: senderCa.issue(['127.0.0.1']) });
    const g = await gateway({ 'xn--mller-kva.example': `127.0.0.1:${dest.port}`, 'xn--bcher-kva.example': `127.0.0.1:${sender.port}` });

    const sent = await sendMail(g.port, { from: 'sender@xn--bcher-kva.example', to: ['dr@xn--mller-kva.example'], raw: testMessage({ from: 'sender@xn--bcher-kva.example', to: 'dr@xn--mller-kva.example' }) });
    expect(sent.ok).toBe(true);

    const report = await g.waitForLog((l) => ['delivery.sent', 'delivery.bounced'].includes(String(l.event)) && String(l.to).startsWith('sender@'));
    expect({ event: report.event, response: report.response }).toMatchObject({ event: 'delivery.sent' });
    await sender.waitFor(1);
    const got = sender.messages[0]!;
    // The report's envelope: the null sender, to the sender (sent as A-labels, or this
    // server without SMTPUTF8 could not have taken it; smtp-server shows U-labels here too).
    expect(got.mailFrom).toBe('');
    expect(got.rcptTo).toEqual(['sender@bücher.example']);
    const text = got.raw.toString('latin1');
    expect([...got.raw].filter((b) => b > 0x7f)).toEqual([]);
    expect(text).toMatch(/^To: <sender@xn--bcher-kva\.example>\r$/m);
    // As the address went out, not `utf-8; dr@m\x{FC}ller.example`.
    expect(text).toMatch(/^Final-Recipient: rfc822; dr@xn--mller-kva\.example\r$/m);
  });
});

describe('buildDsn addresses', () => {
  const original: Envelope = {
    id: 'Q1',
    receivedAt: Date.UTC(2024, 0, 1),
    mailFrom: 'sender@bücher.example',
    rcptTo: ['dr@müller.example', 'jörg@müller.example'],
    client: { ip: '192.0.2.1', helo: 'client.example', sessionId: 's1' },
    bodyType: '7bit',
    smtpUtf8: false,
    size: 1,
  };
  const failed = (rcpt: string) => ({ rcpt, status: '5.1.1', diagnostic: '550 5.1.1 unknown', diagnosticType: 'smtp' as const, lastAttemptAt: Date.UTC(2024, 0, 1) });

  it('an internationalised domain is written as A-labels in To: and Final-Recipient; the report is 7-bit', () => {
    const raw = buildDsn({ hostname: 'postern.test', original, failed: [failed('dr@müller.example')], originalHeaders: Buffer.from('Subject: x\r\n') });
    const text = raw.toString('latin1');
    expect([...raw].filter((b) => b > 0x7f)).toEqual([]);
    expect(text).toContain('\r\nTo: <sender@xn--bcher-kva.example>\r\n');
    expect(text).toContain('\r\nFinal-Recipient: rfc822; dr@xn--mller-kva.example\r\n');
  });

  it('a local part that is not ASCII has no 7-bit form: utf-8 address type for a recipient, UTF-8 in To: for a sender (it needs SMTPUTF8 anyway)', () => {
    const raw = buildDsn({ hostname: 'postern.test', original: { ...original, mailFrom: 'jörg@bücher.example' }, failed: [failed('jörg@müller.example')], originalHeaders: Buffer.from('Subject: x\r\n') });
    const text = raw.toString('utf8');
    expect(text).toContain('\r\nTo: <jörg@bücher.example>\r\n');
    expect(text).toContain('\r\nFinal-Recipient: utf-8; j\\x{F6}rg@m\\x{FC}ller.example\r\n');
  });
});
