import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { createTestCa } from '../helpers/pki.js';
import { scenario } from '../helpers/scenario.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/**
 * SMTPUTF8 on the way out (RFC 6531 §3.4), decided as Postfix does (src/deliver/smtputf8.ts),
 * over real sockets: a client, the gateway, and a next hop that records the parameters of
 * every MAIL FROM it gets.
 */
const s = scenario();

interface Seen {
  from: string;
  /** MAIL FROM parameters, as smtp-server parsed them (SMTPUTF8: true when given). */
  args: Record<string, unknown>;
  raw?: Buffer;
}

/** A next hop that offers SMTPUTF8 or not, and records each MAIL FROM and message. */
class RecordingMx {
  seen: Seen[] = [];
  port = 0;
  private server: SMTPServer | undefined;
  constructor(private readonly offersSmtpUtf8: boolean) {}

  async start(): Promise<this> {
    const server = new SMTPServer({
      name: 'mx.test',
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      hideSTARTTLS: true,
      hideSMTPUTF8: !this.offersSmtpUtf8,
      disableReverseLookup: true,
      logger: false,
      closeTimeout: 200,
      onMailFrom: (address, _session, cb) => {
        this.seen.push({ from: address.address, args: { ...((address as { args?: Record<string, unknown> | false }).args || {}) } });
        cb();
      },
      onData: (stream, _session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const last = this.seen[this.seen.length - 1];
          if (last) last.raw = Buffer.concat(chunks);
          cb(null, 'Ok: stored');
        });
      },
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    server.on('error', () => undefined);
    const addr = server.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return this;
  }

  /** The messages that arrived whole. */
  get messages(): Seen[] {
    return this.seen.filter((m) => m.raw);
  }

  async waitFor(count: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      if (Date.now() > deadline) throw new Error(`next hop got ${this.messages.length} of ${count} messages`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const UTF8_HEADERS = Buffer.from('From: Jürgen <a@client.test>\r\nTo: b@dest.test\r\nSubject: Grüße aus Köln\r\n\r\nhej\r\n', 'utf8');
const ASCII_HEADERS = Buffer.from('From: a@client.test\r\nTo: b@dest.test\r\nSubject: plain\r\n\r\nhej\r\n', 'utf8');

/** A gateway sending dest.test to `dest` and reports for client.test to an MX of their own. */
// Reports go to the sender over verified TLS (rule dsn): the sender's MX has a certificate the gateway trusts.
const senderCa = createTestCa('Sender MX CA');

async function gatewayTo(dest: RecordingMx): Promise<{ gw: TestGateway; reports: Awaited<ReturnType<typeof s.mx>> }> {
  const reports = await s.mx({ tls: senderCa.issue(['127.0.0.1']) });
  const gw = await s.gateway({ delivery: { tls: { trust: [senderCa.caFile] }, routes: { 'dest.test': { nexthop: `127.0.0.1:${dest.port}`, tls: 'none' }, 'client.test': { nexthop: `127.0.0.1:${reports.port}`, tls: 'none' } } } });
  return { gw, reports };
}

const nextHops: RecordingMx[] = [];
afterEach(async () => {
  for (const mx of nextHops.splice(0)) await mx.stop();
});

async function nextHop(offersSmtpUtf8: boolean): Promise<RecordingMx> {
  const mx = await new RecordingMx(offersSmtpUtf8).start();
  nextHops.push(mx);
  return mx;
}

/** One transaction: `MAIL FROM:<a@client.test>` with `params`, to b@dest.test, then `message`. */
async function send(port: number, params: string, message: Buffer): Promise<void> {
  const c = await RawSmtp.connect(port);
  await c.command('EHLO client.test');
  expect(await c.command(`MAIL FROM:<a@client.test>${params ? ` ${params}` : ''}`)).toMatch(/^250/);
  expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^250/);
  expect(await c.command('DATA')).toMatch(/^354/);
  c.write(Buffer.concat([message, Buffer.from('.\r\n')]));
  expect(await c.read()).toMatch(/^250 /);
  c.close();
}

describe('SMTPUTF8 to a next hop that offers it', () => {
  it('is sent when the client sent it, with UTF-8 header fields and ASCII addresses', async () => {
    const dest = await nextHop(true);
    const { gw } = await gatewayTo(dest);
    await send(gw.port, 'SMTPUTF8 BODY=8BITMIME', UTF8_HEADERS);
    await dest.waitFor(1);
    expect(dest.messages[0]!.args).toMatchObject({ SMTPUTF8: true, BODY: '8BITMIME' });
    expect(dest.messages[0]!.raw!.toString('utf8')).toContain('Subject: Grüße aus Köln\r\n');
    expect(gw.events('delivery.smtputf8')).toMatchObject([{ decision: 'smtputf8', reason: 'requested', to: ['b@dest.test'] }]);
  });

  it('is sent when the client did not send it but the header fields are UTF-8', async () => {
    const dest = await nextHop(true);
    const { gw } = await gatewayTo(dest);
    await send(gw.port, 'BODY=8BITMIME', UTF8_HEADERS);
    await dest.waitFor(1);
    expect(dest.messages[0]!.args).toMatchObject({ SMTPUTF8: true });
    expect(gw.events('delivery.smtputf8')).toMatchObject([{ decision: 'smtputf8', reason: 'header', requested: false, utf8Header: true }]);
  });

  it('is not sent for an all-ASCII message whose client did not ask for it (RFC 6531 §3.4: SHOULD NOT)', async () => {
    const dest = await nextHop(true);
    const { gw } = await gatewayTo(dest);
    await send(gw.port, '', ASCII_HEADERS);
    await dest.waitFor(1);
    expect(dest.messages[0]!.args.SMTPUTF8).toBeUndefined();
    expect(gw.events('delivery.smtputf8')).toEqual([]);
  });
});

describe('SMTPUTF8 to a next hop that does not offer it (as Postfix)', () => {
  it('the client asked for it and the header fields are UTF-8: bounced with 5.6.7, nothing sent there', async () => {
    const dest = await nextHop(false);
    const { gw, reports } = await gatewayTo(dest);
    await send(gw.port, 'SMTPUTF8 BODY=8BITMIME', UTF8_HEADERS);
    const settled = await gw.waitForLog((l) => l.event === 'delivery.bounced' || l.event === 'delivery.sent');
    expect(settled).toMatchObject({ event: 'delivery.bounced', to: 'b@dest.test', dsn: '5.6.7' });
    expect(gw.events('delivery.smtputf8')).toMatchObject([{ decision: 'refuse', reason: 'header', requested: true, utf8Header: true }]);
    await reports.waitFor(1);
    expect(dest.seen).toEqual([]);
  });

  it('the client asked for it but the message is all ASCII: sent without it', async () => {
    const dest = await nextHop(false);
    const { gw } = await gatewayTo(dest);
    await send(gw.port, 'SMTPUTF8', ASCII_HEADERS);
    await dest.waitFor(1);
    expect(dest.messages[0]!.args.SMTPUTF8).toBeUndefined();
    expect(gw.events('delivery.smtputf8')).toMatchObject([{ decision: 'without', reason: 'not-needed', requested: true, utf8Header: false }]);
  });

  it('the client did not ask for it, UTF-8 header fields: sent as received (mail that flows today is not bounced), and logged', async () => {
    const dest = await nextHop(false);
    const { gw } = await gatewayTo(dest);
    await send(gw.port, 'BODY=8BITMIME', UTF8_HEADERS);
    await dest.waitFor(1);
    expect(dest.messages[0]!.args.SMTPUTF8).toBeUndefined();
    expect(dest.messages[0]!.raw!.toString('utf8')).toContain('Subject: Grüße aus Köln\r\n');
    expect(gw.events('delivery.smtputf8')).toMatchObject([{ decision: 'without', reason: 'not-requested', requested: false, utf8Header: true, level: 'info' }]);
    expect(gw.events('delivery.bounced')).toEqual([]);
  });
});
