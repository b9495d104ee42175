import { domainToASCII } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDns } from '../helpers/dns-server.js';
import type { LogLine, TestGateway } from '../helpers/gateway.js';
import type { MxOptions, TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

/**
 * Outbound routing through a gateway to MX hosts on their own loopback addresses
 * (127.0.0.2–7, one port: delivery.mxPort): the backup MX after a 4xx, the per-attempt
 * address limit, address literals, malformed destinations and internationalised domains.
 * Retries are far off, so each test sees one delivery attempt.
 */
const s = scenario();
let dns: TestDns;
let gw: TestGateway | undefined;

const ADDRESS_LIMIT = 5;
const MANY = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];

beforeAll(async () => {
  dns = await new TestDns({
    'backup.test': {
      MX: [
        { exchange: 'mx1.backup.test', priority: 10 },
        { exchange: 'mx2.backup.test', priority: 20 },
      ],
    },
    'mx1.backup.test': { A: ['127.0.0.2'] },
    'mx2.backup.test': { A: ['127.0.0.3'] },
    'many.test': { MX: [{ exchange: 'mx.many.test', priority: 10 }] },
    // Nothing listens on 127.0.0.8 in this suite: every connection is refused.
    'down.test': { MX: [{ exchange: 'mx.down.test', priority: 10 }] },
    'mx.down.test': { A: ['127.0.0.8'] },
    'mx.many.test': { A: MANY },
  }).start();
});
afterAll(() => dns.stop());

// Reports go to the sender over verified TLS (rule dsn): a sender MX that is to get one has a certificate the gateway trusts.
const senderCa = createTestCa('Sender MX CA');
const senderMxTls = () => s.mx({ tls: senderCa.issue(['127.0.0.1']) });

/** A gateway delivering by MX at the MXs' port; reports to the sender go to `senderMx`. */
function gateway(mxPort: number, senderMx: TestMx, delivery: Record<string, unknown> = {}): Promise<TestGateway> {
  return s.gateway({
    delivery: {
      mxPort,
      dns: { servers: [dns.server], cacheTtl: 0 },
      tls: { default: 'may', trust: [senderCa.caFile] },
      routes: { 'client.test': { nexthop: `127.0.0.1:${senderMx.port}`, tls: 'none' } },
      retry: { initialDelay: '10m', maxDelay: '10m', lifetime: '1h' },
      ...delivery,
    },
  });
}

const DELIVERY_LINES = ['delivery.sent', 'delivery.deferred', 'delivery.bounced'];
/** The first delivery line (sent, deferred, bounced) for a recipient: the end of its first attempt. */
const firstDeliveryLine = (gw: TestGateway, to: string): Promise<LogLine> => gw.waitForLog((l) => DELIVERY_LINES.includes(String(l.event)) && l.to === to);

const TRY_LATER: [number, string] = [451, '4.3.0 Local problem, try again later'];
const REFUSALS: [stage: string, command: string, refuse: MxOptions][] = [
  ['MAIL FROM', 'MAIL FROM', { mailReply: () => TRY_LATER }],
  ['RCPT TO', 'RCPT TO', { rcptReply: () => TRY_LATER }],
  ['the end of DATA', 'DATA', { dataReply: () => TRY_LATER }],
];

describe('a 4xx from one MX host: the next host in the same attempt (RFC 5321 §5.1)', () => {
  it.each(REFUSALS)('451 at %s from the primary MX: the backup MX takes the message, and both hosts are in the log', async (_stage, command, refuse) => {
    const [primary, backup] = await s.mxHosts([{ host: '127.0.0.2', ...refuse }, { host: '127.0.0.3' }]);
    const port = primary!.port;
    gw = await gateway(port, await s.mx());
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['dr@backup.test'], raw: testMessage({ to: 'dr@backup.test' }) })).ok).toBe(true);

    expect(await firstDeliveryLine(gw, 'dr@backup.test')).toMatchObject({ event: 'delivery.sent', attempt: 1, relay: `mx2.backup.test[127.0.0.3]:${port}`, route: 'mx' });
    expect(backup!.messages.map((m) => m.rcptTo)).toEqual([['dr@backup.test']]);
    expect(primary!.commands.map((c) => c.command)).toContain(command);
    expect(primary!.messages).toHaveLength(0);
    expect(gw.events('delivery.next-address')).toMatchObject([
      { to: 'dr@backup.test', relay: `mx1.backup.test[127.0.0.2]:${port}`, dsn: '4.3.0', category: 'temporary', response: '451 4.3.0 Local problem, try again later', next: `mx2.backup.test[127.0.0.3]:${port}` },
    ]);
  });

  it('per recipient: 250 and 550 settle at the primary, only the 451 goes on to the backup; the report names the MX that refused', async () => {
    const [primary, backup] = await s.mxHosts([
      { host: '127.0.0.2', rcptReply: (rcpt) => (rcpt.startsWith('later@') ? TRY_LATER : rcpt.startsWith('gone@') ? [550, '5.1.1 <gone@backup.test>: no such user'] : undefined) },
      { host: '127.0.0.3' },
    ]);
    const port = primary!.port;
    const senderMx = await senderMxTls();
    gw = await gateway(port, senderMx);
    const rcpts = ['ok@backup.test', 'later@backup.test', 'gone@backup.test'];
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: rcpts, raw: testMessage({ to: rcpts.join(', ') }) })).ok).toBe(true);

    const [ok, later, gone] = await Promise.all(rcpts.map((r) => firstDeliveryLine(gw!, r)));
    expect(ok).toMatchObject({ event: 'delivery.sent', relay: `mx1.backup.test[127.0.0.2]:${port}` });
    expect(gone).toMatchObject({ event: 'delivery.bounced', dsn: '5.1.1', relay: `mx1.backup.test[127.0.0.2]:${port}` });
    expect(later).toMatchObject({ event: 'delivery.sent', attempt: 1, relay: `mx2.backup.test[127.0.0.3]:${port}` });
    expect(primary!.messages.map((m) => m.rcptTo)).toEqual([['ok@backup.test']]);
    expect(backup!.messages.map((m) => m.rcptTo)).toEqual([['later@backup.test']]);
    expect(backup!.commands.filter((c) => c.command === 'RCPT TO').map((c) => c.address)).toEqual(['later@backup.test']);
    expect(gw.events('delivery.next-address').map((l) => l.to)).toEqual(['later@backup.test']);

    await senderMx.waitFor(1);
    const report = senderMx.messages[0]!.raw.toString();
    expect(report).toMatch(/^Final-Recipient: rfc822; gone@backup\.test\r\nAction: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; mx1\.backup\.test\r\n/m);
  });

  it('a 4xx from every MX host: deferred with the last host\'s answer, each host tried in the log', async () => {
    const [primary, backup] = await s.mxHosts([
      { host: '127.0.0.2', rcptReply: () => TRY_LATER },
      { host: '127.0.0.3', rcptReply: () => [450, '4.2.0 Greylisted, come back later'] },
    ]);
    const port = primary!.port;
    gw = await gateway(port, await s.mx());
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['dr@backup.test'], raw: testMessage() })).ok).toBe(true);

    expect(await firstDeliveryLine(gw, 'dr@backup.test')).toMatchObject({ event: 'delivery.deferred', attempt: 1, relay: `mx2.backup.test[127.0.0.3]:${port}`, dsn: '4.2.0', response: '450 4.2.0 Greylisted, come back later' });
    expect(gw.events('delivery.next-address')).toMatchObject([{ to: 'dr@backup.test', relay: `mx1.backup.test[127.0.0.2]:${port}`, dsn: '4.3.0' }]);
    expect(backup!.commands.filter((c) => c.command === 'RCPT TO')).toHaveLength(1);
  });

  it(`tries at most ${ADDRESS_LIMIT} addresses per attempt`, async () => {
    const mxs = await s.mxHosts(MANY.map((host) => ({ host, rcptReply: () => TRY_LATER })));
    const port = mxs[0]!.port;
    gw = await gateway(port, await s.mx());
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['dr@many.test'], raw: testMessage() })).ok).toBe(true);

    expect(await firstDeliveryLine(gw, 'dr@many.test')).toMatchObject({ event: 'delivery.deferred', attempt: 1, relay: `mx.many.test[${MANY[ADDRESS_LIMIT - 1]}]:${port}`, dsn: '4.3.0' });
    expect(mxs.map((m) => m.commands.filter((c) => c.command === 'RCPT TO').length)).toEqual([1, 1, 1, 1, 1, 0]);
    expect(gw.events('delivery.next-address').map((l) => l.relay)).toEqual(MANY.slice(0, ADDRESS_LIMIT - 1).map((a) => `mx.many.test[${a}]:${port}`));
  });
});

describe('Remote-MTA in a report', () => {
  it('is left out when no server answered, even for an MX with a host name', async () => {
    const senderMx = await senderMxTls();
    gw = await gateway(senderMx.port, senderMx, { retry: { initialDelay: '200ms', maxDelay: '400ms', lifetime: '1500ms' } });
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['dr@down.test'], raw: testMessage() })).ok).toBe(true);

    await senderMx.waitFor(1, 15_000);
    const status = /Content-Type: message\/delivery-status\r\n\r\n([\s\S]*?)\r\n--/.exec(senderMx.messages[0]!.raw.toString())?.[1] ?? '';
    expect(status).toMatch(/^Final-Recipient: rfc822; dr@down\.test\r\nAction: failed\r\nStatus: 5\.4\.7\r\n/m);
    expect(status.match(/^Remote-MTA:.*$/gm) ?? []).toEqual([]);
  });
});

describe('address literals and malformed destinations', () => {
  it('delivers to an address literal at that address, without DNS', async () => {
    const [literalMx] = await s.mxHosts([{ host: '127.0.0.5' }]);
    const port = literalMx!.port;
    gw = await gateway(port, await s.mx());
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['dr@[127.0.0.5]'], raw: testMessage() })).ok).toBe(true);

    expect(await firstDeliveryLine(gw, 'dr@[127.0.0.5]')).toMatchObject({ event: 'delivery.sent', attempt: 1, relay: `127.0.0.5[127.0.0.5]:${port}`, route: 'address-literal' });
    expect(literalMx!.messages.map((m) => m.rcptTo)).toEqual([['dr@[127.0.0.5]']]);
    expect(dns.queries.filter((q) => q.name.includes('127.0.0.5'))).toEqual([]);
  });

  it('bounces a malformed address literal and a malformed domain name at once', async () => {
    const senderMx = await s.mx();
    gw = await gateway(senderMx.port, senderMx);
    const longLabel = `dr@${'a'.repeat(64)}.test`;
    // The ingress lets this one through (an IPv6 zone index); RFC 5321's IPv6-addr has none.
    const badLiteral = 'dr@[IPv6:fe80::1%eth0]';
    const sent = await sendMail(gw.port, { from: 'sender@client.test', to: [badLiteral, longLabel], raw: testMessage() });
    expect(sent.ok).toBe(true);
    expect(gw.events('queue.accepted')).toMatchObject([{ nrcpt: 2 }]);

    expect(await firstDeliveryLine(gw, badLiteral)).toMatchObject({ event: 'delivery.bounced', attempt: 1, dsn: '5.1.3', category: 'routing' });
    expect(await firstDeliveryLine(gw, longLabel)).toMatchObject({ event: 'delivery.bounced', attempt: 1, dsn: '5.1.2', category: 'routing', response: expect.stringContaining('EBADNAME') });
  });
});

describe('internationalised domains', () => {
  /** An address with its domain as A-labels: the ingress may hand the domain over in either form. */
  const aLabels = (address: string) => `${address.slice(0, address.lastIndexOf('@'))}@${domainToASCII(address.slice(address.lastIndexOf('@') + 1))}`;
  const firstLineFor = (to: string) => gw!.waitForLog((l) => DELIVERY_LINES.includes(String(l.event)) && aLabels(String(l.to)) === to);

  it('a route keyed by the A-label takes a recipient written either way; a TLS level keyed by the U-label binds an A-label recipient', async () => {
    const mx = await s.mx();
    gw = await gateway(mx.port, mx, {
      routes: { 'client.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' }, 'xn--bcher-kva.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' }, 'xn--mnchen-3ya.test': `127.0.0.1:${mx.port}` },
      tls: { default: 'may', domains: { 'münchen.test': 'encrypt' } },
    });
    for (const to of ['a@xn--bcher-kva.test', 'b@bücher.test', 'c@xn--mnchen-3ya.test']) {
      expect((await sendMail(gw.port, { from: 'sender@client.test', to: [to], raw: testMessage() })).ok, to).toBe(true);
    }

    expect(await firstLineFor('a@xn--bcher-kva.test')).toMatchObject({ event: 'delivery.sent', route: 'transport' });
    expect(await firstLineFor('b@xn--bcher-kva.test')).toMatchObject({ event: 'delivery.sent', route: 'transport' });
    // The MX offers no STARTTLS: at `encrypt` nothing goes.
    expect(await firstLineFor('c@xn--mnchen-3ya.test')).toMatchObject({ event: 'delivery.deferred', dsn: '4.7.5', tls: { level: 'encrypt' } });
    expect(mx.messages.flatMap((m) => m.rcptTo).map(aLabels).sort()).toEqual(['a@xn--bcher-kva.test', 'b@xn--bcher-kva.test']);
  });
});
