import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { MAX_TIMER_MS } from '../../src/config/schema.js';
import { TestDns } from '../helpers/dns-server.js';
import type { LogLine, TestGateway } from '../helpers/gateway.js';
import type { MxOptions, TestMx } from '../helpers/mx-server.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

/**
 * The wait for the reply to the end of the message (RFC 5321 §4.5.3.2.6: 10 minutes,
 * delivery.timeouts.dataDone), and what happens when it runs out. The server may have
 * taken the message by then, so it is not offered to the backup MX in the same attempt:
 * that made a second copy at once. dest.test has two MX hosts on their own loopback
 * addresses; retries are far off, so each test sees one attempt.
 */
const s = scenario();
let dns: TestDns;

beforeAll(async () => {
  dns = await new TestDns({
    'dest.test': {
      MX: [
        { exchange: 'mx1.dest.test', priority: 10 },
        { exchange: 'mx2.dest.test', priority: 20 },
      ],
    },
    'mx1.dest.test': { A: ['127.0.0.2'] },
    'mx2.dest.test': { A: ['127.0.0.3'] },
  }).start();
});
afterAll(() => dns.stop());

/** The primary MX (answering the end of DATA after `delayMs`), the backup, and a gateway. */
async function setup(delayMs: number, timeouts: Record<string, string>, primary: MxOptions = {}): Promise<{ gw: TestGateway; mx1: TestMx; mx2: TestMx }> {
  const [mx1, mx2] = await s.mxHosts([
    { host: '127.0.0.2', dataDelay: () => delayMs, ...primary },
    { host: '127.0.0.3' },
  ]);
  const sender = await s.mx();
  const gw = await s.gateway({
    delivery: {
      mxPort: mx1!.port,
      dns: { servers: [dns.server], cacheTtl: 0 },
      tls: { default: 'may' },
      routes: { 'client.test': { nexthop: `127.0.0.1:${sender.port}`, tls: 'none' } },
      timeouts,
      retry: { initialDelay: '10m', maxDelay: '1h', lifetime: '5d' },
    },
  });
  return { gw, mx1: mx1!, mx2: mx2! };
}

const DELIVERY_LINES = ['delivery.sent', 'delivery.deferred', 'delivery.bounced'];
const firstLine = (gw: TestGateway, to: string): Promise<LogLine> => gw.waitForLog((l) => DELIVERY_LINES.includes(String(l.event)) && l.to === to);

describe('the reply to the end of DATA', () => {
  it('is waited for longer than timeouts.socket: a primary MX slower than that delivers the one copy, the backup gets none', async () => {
    const { gw, mx1, mx2 } = await setup(2500, { socket: '1s' });
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['dr@dest.test'], raw: testMessage({ to: 'dr@dest.test' }) })).ok).toBe(true);
    const line = await firstLine(gw, 'dr@dest.test');
    expect(line).toMatchObject({ event: 'delivery.sent', relay: `mx1.dest.test[127.0.0.2]:${mx1.port}` });
    expect(mx1.messages.map((m) => m.rcptTo)).toEqual([['dr@dest.test']]);
    expect(mx2.commands).toEqual([]);
    expect(gw.events('delivery.next-address')).toEqual([]);
  });

  it('not given within timeouts.dataDone: deferred to the next attempt as possibly delivered, never sent to the backup MX in the same attempt', async () => {
    const { gw, mx2 } = await setup(5000, { dataDone: '1s' }, { rcptReply: (r) => (r.startsWith('gone@') ? [550, '5.1.1 User unknown'] : undefined) });
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['dr@dest.test', 'gone@dest.test'], raw: testMessage({ to: 'dr@dest.test' }) })).ok).toBe(true);
    const line = await firstLine(gw, 'dr@dest.test');
    expect(line).toMatchObject({ event: 'delivery.deferred', dsn: '4.4.2', category: 'after-dot' });
    expect(String(line.response)).toMatch(/no reply after the end of the message .*may have been delivered, and may arrive twice/);
    // The recipient refused at RCPT TO keeps its reply through the lost connection.
    expect(await firstLine(gw, 'gone@dest.test')).toMatchObject({ event: 'delivery.bounced', dsn: '5.1.1' });
    expect(mx2.commands).toEqual([]);
    expect(gw.events('delivery.next-address')).toEqual([]);
  });
});

describe('delivery.timeouts.dataDone', () => {
  it('is a duration bounded like the other timeouts, refused naming the key', () => {
    let problems: string[] = [];
    try {
      parseConfigText('hostname: gw.example.org\ndelivery:\n  timeouts:\n    dataDone: 25d\n', 'test.yaml', {});
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    expect(problems).toEqual([`delivery.timeouts.dataDone: must be at most 24d (${MAX_TIMER_MS} ms): the gateway waits this long with a timer, and timers cannot wait longer`]);
  });

  it('defaults to 10 minutes', () => {
    expect(parseConfigText('hostname: gw.example.org\n', 'test.yaml', {}).delivery.timeouts.dataDone).toBe(600_000);
  });
});
