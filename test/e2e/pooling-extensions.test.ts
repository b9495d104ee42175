import { simpleParser } from 'mailparser';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { scenario } from '../helpers/scenario.js';
import { RawSmtp, sendMail, testMessage } from '../helpers/smtp-client.js';

const s = scenario();
const mx = s.mx;
let gw: TestGateway | undefined;
const route = (m: TestMx, extra: Record<string, unknown> = {}) => ({ delivery: { routes: { '*': { nexthop: `127.0.0.1:${m.port}`, tls: 'none' } }, ...extra } });

// Reports go to the sender over verified TLS (rule dsn): the sender's MX has a certificate the gateway trusts.
const senderCa = createTestCa('Sender MX CA');
const senderTls = { tls: senderCa.issue(['127.0.0.1']) };

/** A gateway routing dest.test to `dest` and the sender's domain (client.test) to `senderMx`, which gets the reports. */
const gatewayBetween = (dest: TestMx, senderMx: TestMx) =>
  s.gateway({ delivery: { tls: { trust: [senderCa.caFile] }, routes: { 'dest.test': { nexthop: `127.0.0.1:${dest.port}`, tls: 'none' }, 'client.test': { nexthop: `127.0.0.1:${senderMx.port}`, tls: 'none' } } } });

/** One transaction in a session of its own, each step accepted; the bytes after 354 are `data`, its final dot included. */
async function sendTransaction(port: number, mailFrom: string, rcpt: string, data: string | Buffer): Promise<void> {
  const c = await RawSmtp.connect(port);
  await c.command('EHLO client.test');
  expect(await c.command(`MAIL FROM:${mailFrom}`)).toMatch(/^250/);
  c.write(Buffer.from(`RCPT TO:<${rcpt}>\r\n`, 'utf8'));
  expect(await c.read()).toMatch(/^250/);
  expect(await c.command('DATA')).toMatch(/^354/);
  c.write(data);
  expect(await c.read()).toMatch(/^250 /);
  c.close();
}

describe('pooled delivery', () => {
  it('reuses connections across messages and logs how many each carried', async () => {
    const dest = await mx();
    gw = await s.gateway(route(dest, { pool: { idleTimeout: '300ms', maxConnectionsPerHost: 1 } }));
    for (let i = 0; i < 8; i++) expect((await sendMail(gw.port, { from: 'a@client.test', to: [`r${i}@dest.test`], raw: testMessage() })).ok).toBe(true);
    await dest.waitFor(8);
    const closed = await gw.waitForLog((l) => l.event === 'delivery.connection');
    expect(dest.connections).toBe(1);
    expect(closed).toMatchObject({ messages: 8, reason: 'idle' });
    const conns = new Set(gw.events('delivery.sent').map((l) => l.conn));
    expect(conns.size).toBe(1);
  });

  it('opens a new connection after maxMessagesPerConnection', async () => {
    const dest = await mx();
    gw = await s.gateway(route(dest, { pool: { maxMessagesPerConnection: 3, maxConnectionsPerHost: 1 } }));
    for (let i = 0; i < 7; i++) await sendMail(gw.port, { from: 'a@client.test', to: [`r${i}@dest.test`], raw: testMessage() });
    await dest.waitFor(7);
    expect(dest.connections).toBe(3);
    const used = gw.events('delivery.connection').filter((l) => l.reason === 'used-up');
    expect(used.map((l) => l.messages)).toEqual([3, 3]);
  });

  it('sends one transaction per destination domain with all its recipients', async () => {
    const a = await mx();
    const b = await mx();
    gw = await s.gateway({
      delivery: { routes: { 'a.test': { nexthop: `127.0.0.1:${a.port}`, tls: 'none' }, 'b.test': { nexthop: `127.0.0.1:${b.port}`, tls: 'none' } } },
    });
    const r = await sendMail(gw.port, { from: 'a@client.test', to: ['x@a.test', 'y@a.test', 'z@b.test'], raw: testMessage() });
    expect(r.ok).toBe(true);
    await a.waitFor(1);
    await b.waitFor(1);
    expect(a.messages[0]!.rcptTo).toEqual(['x@a.test', 'y@a.test']);
    expect(b.messages[0]!.rcptTo).toEqual(['z@b.test']);
  });
});

describe('extensions the original client relied on', () => {
  it('bounces with 5.6.7 rather than send an internationalised address to a server without SMTPUTF8', async () => {
    const dest = await mx({ smtputf8: false });
    const senderMx = await mx(senderTls);
    gw = await gatewayBetween(dest, senderMx);
    await sendTransaction(gw.port, '<a@client.test> SMTPUTF8', 'pätient@dest.test', 'Subject: utf8\r\n\r\nhej\r\n.\r\n');
    const bounced = await gw.waitForLog((l) => l.event === 'delivery.bounced');
    expect(bounced).toMatchObject({ dsn: '5.6.7' });
    await senderMx.waitFor(1);
    expect(dest.messages).toHaveLength(0);
  });

  it('sends an address whose domain only is internationalised with A-labels, without SMTPUTF8, routed by an A-label key', async () => {
    // smtp-server turns "xn--bcher-kva.test" into "bücher.test": without the conversion
    // back, the route keyed by the A-label missed and the next hop needed SMTPUTF8 (5.6.7).
    const dest = await mx({ smtputf8: false });
    const elsewhere = await mx();
    gw = await s.gateway({ delivery: { routes: { 'xn--bcher-kva.test': { nexthop: `127.0.0.1:${dest.port}`, tls: 'none' }, '*': { nexthop: `127.0.0.1:${elsewhere.port}`, tls: 'none' } } } });
    expect((await sendMail(gw.port, { from: 'a@xn--sndr-5qa.test', to: ['dr@xn--bcher-kva.test'], raw: testMessage() })).ok).toBe(true);
    await sendTransaction(gw.port, '<a@client.test> SMTPUTF8', 'nurse@bücher.test', 'Subject: u-label\r\n\r\nhej\r\n.\r\n');
    await dest.waitFor(2);
    // The test MX is smtp-server too, so it shows the domains as U-labels again; that it
    // took them at all, without SMTPUTF8, shows they went out as A-labels.
    expect(dest.messages.map((m) => [m.mailFrom, m.rcptTo])).toEqual(
      expect.arrayContaining([
        ['a@söndr.test', ['dr@bücher.test']],
        ['a@client.test', ['nurse@bücher.test']],
      ]),
    );
    expect(elsewhere.messages).toHaveLength(0);
    expect(gw.logs.filter((l) => l.event === 'delivery.bounced')).toHaveLength(0);
  });

  it('a report about a message with 8-bit headers is 7-bit, so it reaches a sender whose server lacks 8BITMIME', async () => {
    // The report used to carry the original's headers raw: refused there with 5.6.3, and
    // a report about a report is never sent, so the sender never learnt of the failure.
    const dest = await mx({ rcptReply: () => [550, '5.1.1 User unknown'] });
    const senderMx = await mx({ eightBitMime: false, smtputf8: false, ...senderTls });
    gw = await gatewayBetween(dest, senderMx);
    await sendTransaction(gw.port, '<a@client.test> SMTPUTF8 BODY=8BITMIME', 'nobody@dest.test', Buffer.from('From: a@client.test\r\nTo: nobody@dest.test\r\nSubject: Grüße aus Köln\r\n\r\nhej\r\n.\r\n', 'utf8'));
    await senderMx.waitFor(1);
    const report = senderMx.messages[0]!.raw;
    expect(report.every((b) => b < 0x80)).toBe(true);
    const parsed = await simpleParser(report);
    const headersPart = parsed.attachments.find((a) => a.contentType === 'text/rfc822-headers');
    expect(headersPart?.content.toString('utf8')).toContain('Subject: Grüße aus Köln\r\n');
    expect(gw.logs.filter((l) => l.event === 'delivery.bounced').map((l) => l.to)).toEqual(['nobody@dest.test']);
  });

  it('bounces with 5.6.3 rather than send an 8-bit body to a server without 8BITMIME', async () => {
    const dest = await mx({ eightBitMime: false });
    const senderMx = await mx(senderTls);
    gw = await gatewayBetween(dest, senderMx);
    await sendTransaction(gw.port, '<a@client.test> BODY=8BITMIME', 'b@dest.test', Buffer.from('Subject: 8bit\r\n\r\nGr\xfc\xdfe\r\n.\r\n', 'latin1'));
    expect(await gw.waitForLog((l) => l.event === 'delivery.bounced')).toMatchObject({ dsn: '5.6.3' });
    expect(dest.messages).toHaveLength(0);
  });
});
