import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import type { TestGateway } from '../helpers/gateway.js';
import type { MxOptions, TestMx } from '../helpers/mx-server.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

/**
 * Many recipients at one domain: at most delivery.maxRecipientsPerTransaction per SMTP
 * transaction (RFC 5321 §4.5.3.1.10: a server must take 100, may refuse more with 452),
 * the rest in further transactions on the same connection; recipients a server refuses
 * as too many go again at once, not after the retry backoff (which made 1000 recipients
 * at a server's limit of 100 take hours). Retries are far off: each test sees one attempt.
 */
const s = scenario();

const TOO_MANY: [number, string] = [452, '4.5.3 Too many recipients'];

/** RCPT TO commands so far in the MAIL transaction of the MX's latest command (that one included). */
function rcptsInTransaction(mx: TestMx): number {
  const last = mx.commands[mx.commands.length - 1]!;
  let n = 0;
  for (let i = mx.commands.length - 1; i >= 0; i--) {
    const c = mx.commands[i]!;
    if (c.sessionId !== last.sessionId) continue;
    if (c.command === 'MAIL FROM') break;
    if (c.command === 'RCPT TO') n++;
  }
  return n;
}

/** An MX that refuses every recipient past `limit` in a transaction as too many. */
async function limitedMx(limit: number, opts: MxOptions = {}): Promise<TestMx> {
  const mx: TestMx = await s.mx({ ...opts, rcptReply: () => (rcptsInTransaction(mx) > limit ? TOO_MANY : undefined) });
  return mx;
}

async function gatewayTo(mx: TestMx, delivery: Record<string, unknown> = {}): Promise<TestGateway> {
  const sender = await s.mx();
  return s.gateway({
    delivery: {
      routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' }, 'client.test': { nexthop: `127.0.0.1:${sender.port}`, tls: 'none' } },
      retry: { initialDelay: '10m', maxDelay: '1h', lifetime: '5d' },
      ...delivery,
    },
  });
}

const rcptList = (n: number): string[] => Array.from({ length: n }, (_, i) => `r${i}@dest.test`);

/** Sends one message to `to` and waits for every recipient's delivery line of the first attempt. */
async function deliver(gw: TestGateway, to: string[]): Promise<void> {
  expect((await sendMail(gw.port, { from: 'sender@client.test', to, raw: testMessage({ to: 'list@dest.test' }) })).ok).toBe(true);
  for (const rcpt of to) await gw.waitForLog((l) => ['delivery.sent', 'delivery.deferred', 'delivery.bounced'].includes(String(l.event)) && l.to === rcpt);
}

describe('delivery.maxRecipientsPerTransaction', () => {
  it('150 recipients to an MX that takes 100 per transaction (the default limit): two transactions on one connection, all sent in the first attempt', async () => {
    const mx = await limitedMx(100);
    const gw = await gatewayTo(mx);
    await deliver(gw, rcptList(150));
    expect(gw.events('delivery.deferred')).toEqual([]);
    expect(gw.events('delivery.sent')).toHaveLength(150);
    expect(mx.messages.map((m) => m.rcptTo.length)).toEqual([100, 50]);
    expect(mx.connections).toBe(1);
  });

  it('limit 3, 7 recipients: transactions of 3, 3 and 1 on one connection', async () => {
    const mx = await s.mx();
    const gw = await gatewayTo(mx, { maxRecipientsPerTransaction: 3 });
    await deliver(gw, rcptList(7));
    expect(gw.events('delivery.sent')).toHaveLength(7);
    expect(mx.messages.map((m) => m.rcptTo)).toEqual([rcptList(7).slice(0, 3), rcptList(7).slice(3, 6), rcptList(7).slice(6)]);
    expect(new Set(mx.messages.map((m) => m.sessionId)).size).toBe(1);
    expect(mx.connections).toBe(1);
  });

  it('a transaction whose message is refused (554 at the end of DATA) is ended with RSET, and the next goes on the same connection', async () => {
    const mx = await s.mx({ dataReply: (m) => (m.rcptTo.includes('r0@dest.test') ? [554, '5.7.1 Refused by content policy'] : undefined) });
    const gw = await gatewayTo(mx, { maxRecipientsPerTransaction: 2 });
    await deliver(gw, rcptList(4));
    expect(gw.events('delivery.bounced').map((l) => l.to).sort()).toEqual(['r0@dest.test', 'r1@dest.test']);
    expect(gw.events('delivery.sent').map((l) => l.to).sort()).toEqual(['r2@dest.test', 'r3@dest.test']);
    expect(mx.messages.map((m) => m.rcptTo)).toEqual([['r2@dest.test', 'r3@dest.test']]);
    expect(mx.connections).toBe(1);
  });

  it('is a positive integer, checked at start-up naming the key', () => {
    let problems: string[] = [];
    try {
      parseConfigText('hostname: gw.example.org\ndelivery:\n  maxRecipientsPerTransaction: 0\n', 'test.yaml', {});
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^delivery\.maxRecipientsPerTransaction: /);
  });
});

describe('452 too many recipients (RFC 5321 §4.5.3.1.10)', () => {
  it('an MX that takes 3 per transaction: the refused rest goes at once in further transactions on the same connection, none deferred', async () => {
    const mx = await limitedMx(3);
    const gw = await gatewayTo(mx);
    await deliver(gw, rcptList(8));
    expect(gw.events('delivery.deferred')).toEqual([]);
    expect(gw.events('delivery.sent')).toHaveLength(8);
    expect(mx.messages.map((m) => m.rcptTo)).toEqual([rcptList(8).slice(0, 3), rcptList(8).slice(3, 6), rcptList(8).slice(6)]);
    expect(mx.connections).toBe(1);
  });

  it('a transaction that delivers nobody ends it: every recipient refused as too many is deferred with the 452 after one transaction', async () => {
    const mx = await limitedMx(0);
    const gw = await gatewayTo(mx);
    await deliver(gw, rcptList(4));
    const deferred = gw.events('delivery.deferred');
    expect(deferred.map((l) => l.to).sort()).toEqual(rcptList(4));
    expect(deferred[0]).toMatchObject({ dsn: '4.5.3', category: 'too-many-recipients', response: '452 4.5.3 Too many recipients' });
    expect(mx.commands.filter((c) => c.command === 'MAIL FROM')).toHaveLength(1);
  });
});
