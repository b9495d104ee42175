import { SMTPServer } from 'smtp-server';
import { describe, expect, it } from 'vitest';
import type { LogLine, TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

/**
 * A recipient the next hop refused at RCPT TO keeps that reply, whatever the reply to
 * the message (DATA, the end of DATA) says for the recipients it accepted. Given the
 * message's reply instead, a recipient refused for now was bounced with another
 * recipient's content refusal (mail lost), and an unknown user was retried for days.
 * Retries are far off: each test sees one delivery attempt.
 */
const s = scenario();

const DELIVERY_LINES = ['delivery.sent', 'delivery.deferred', 'delivery.bounced'];
const firstLine = (gw: TestGateway, to: string): Promise<LogLine> => gw.waitForLog((l) => DELIVERY_LINES.includes(String(l.event)) && l.to === to);

/** r2 refused at RCPT TO with `atRcpt`; the message (to r1 alone) refused with `atEnd`. */
async function attempt(atRcpt: [number, string], atEnd: [number, string]): Promise<{ r1: LogLine; r2: LogLine }> {
  const dest = await s.mx({ rcptReply: (r) => (r.startsWith('r2@') ? atRcpt : undefined), dataReply: () => atEnd });
  const sender = await s.mx();
  const gw = await s.gateway({
    delivery: {
      routes: { 'dest.test': { nexthop: `127.0.0.1:${dest.port}`, tls: 'none' }, 'client.test': { nexthop: `127.0.0.1:${sender.port}`, tls: 'none' } },
      retry: { initialDelay: '10m', maxDelay: '1h', lifetime: '5d' },
    },
  });
  expect((await sendMail(gw.port, { from: 's@client.test', to: ['r1@dest.test', 'r2@dest.test'], raw: testMessage() })).ok).toBe(true);
  return { r1: await firstLine(gw, 'r1@dest.test'), r2: await firstLine(gw, 'r2@dest.test') };
}

describe('a recipient refused at RCPT TO keeps its own reply (pipelined envelope, real MX)', () => {
  it('450 at RCPT for r2, 554 at the end of DATA for the message: r2 is deferred with its 450, r1 bounced with the 554', async () => {
    const { r1, r2 } = await attempt([450, '4.2.1 Mailbox busy, try again'], [554, '5.7.1 Message rejected by content policy']);
    expect(r2).toMatchObject({ event: 'delivery.deferred', dsn: '4.2.1', response: '450 4.2.1 Mailbox busy, try again' });
    expect(r1).toMatchObject({ event: 'delivery.bounced', dsn: '5.7.1', response: '554 5.7.1 Message rejected by content policy' });
  });

  it('550 5.1.1 at RCPT for r2, 451 at the end of DATA: r2 bounces as unknown, only r1 waits for the retry', async () => {
    const { r1, r2 } = await attempt([550, '5.1.1 User unknown'], [451, '4.3.0 Try again later']);
    expect(r2).toMatchObject({ event: 'delivery.bounced', dsn: '5.1.1', category: 'recipient', response: '550 5.1.1 User unknown' });
    expect(r1).toMatchObject({ event: 'delivery.deferred', dsn: '4.3.0', response: '451 4.3.0 Try again later' });
  });
});

describe('the same on a next hop without PIPELINING (one command at a time)', () => {
  it('550 5.1.1 at RCPT for r2, 451 at the end of DATA: r2 bounces, r1 is deferred', async () => {
    // TestMx offers PIPELINING; its options do not hide it, so an smtp-server of our own.
    const server = new SMTPServer({
      hidePIPELINING: true,
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      logger: false,
      closeTimeout: 200,
      onRcptTo: (addr, _session, cb) => cb(addr.address.startsWith('r2@') ? Object.assign(new Error('5.1.1 User unknown'), { responseCode: 550 }) : undefined),
      onData: (stream, _session, cb) => {
        stream.resume();
        stream.on('end', () => cb(Object.assign(new Error('4.3.0 Try again later'), { responseCode: 451 })));
      },
    });
    server.on('error', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (server.server.address() as { port: number }).port;
      const sender = await s.mx();
      const gw = await s.gateway({
        delivery: {
          routes: { 'dest.test': { nexthop: `127.0.0.1:${port}`, tls: 'none' }, 'client.test': { nexthop: `127.0.0.1:${sender.port}`, tls: 'none' } },
          retry: { initialDelay: '10m', maxDelay: '1h', lifetime: '5d' },
        },
      });
      expect((await sendMail(gw.port, { from: 's@client.test', to: ['r1@dest.test', 'r2@dest.test'], raw: testMessage() })).ok).toBe(true);
      expect(await firstLine(gw, 'r2@dest.test')).toMatchObject({ event: 'delivery.bounced', dsn: '5.1.1', response: '550 5.1.1 User unknown' });
      expect(await firstLine(gw, 'r1@dest.test')).toMatchObject({ event: 'delivery.deferred', dsn: '4.3.0' });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('a refusal at RCPT TO outlasts a reply that ends the session', () => {
  it('550 5.1.1 at RCPT for r2, then 421 (closing) at the end of DATA: r2 bounces, r1 is deferred with the 421', async () => {
    const dest = await s.mx({ rcptReply: (r) => (r.startsWith('r2@') ? [550, '5.1.1 User unknown'] : undefined), dataReply: () => [421, '4.3.2 Shutting down'] });
    const sender = await s.mx();
    const gw = await s.gateway({
      delivery: {
        routes: { 'dest.test': { nexthop: `127.0.0.1:${dest.port}`, tls: 'none' }, 'client.test': { nexthop: `127.0.0.1:${sender.port}`, tls: 'none' } },
        retry: { initialDelay: '10m', maxDelay: '1h', lifetime: '5d' },
      },
    });
    expect((await sendMail(gw.port, { from: 's@client.test', to: ['r1@dest.test', 'r2@dest.test'], raw: testMessage() })).ok).toBe(true);
    expect(await firstLine(gw, 'r2@dest.test')).toMatchObject({ event: 'delivery.bounced', dsn: '5.1.1', response: '550 5.1.1 User unknown' });
    expect(await firstLine(gw, 'r1@dest.test')).toMatchObject({ event: 'delivery.deferred', response: '421 4.3.2 Shutting down' });
  });
});
