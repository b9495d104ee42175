import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectArchiveMatches } from '../helpers/archive-check.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/** A body that ends early under a lax end-of-data reading and carries a second, forged message. */
function smuggle(terminator: string): string {
  return (
    'From: a@client.test\r\nTo: b@dest.test\r\nSubject: legit\r\n\r\nfirst part' +
    terminator +
    'MAIL FROM:<ceo@client.test>\r\nRCPT TO:<victim@dest.test>\r\nDATA\r\nFrom: ceo@client.test\r\nSubject: smuggled\r\n\r\nwire the money\r\n.\r\n'
  );
}

/** Each gateway's archive is checked as it stops (test/helpers/archive-check.ts). */
const checked = { afterStop: expectArchiveMatches };

const SEQUENCES: [string, string][] = [
  ['<LF>.<CR><LF>', '\n.\r\n'],
  ['<CR>.<CR><LF>', '\r.\r\n'],
  ['<CR><CR><LF>.<CR><CR><LF>', '\r\r\n.\r\r\n'],
  ['<LF>.<LF>', '\n.\n'],
];

describe('SMTP smuggling guard and STARTTLS injection', () => {
  let mx: TestMx;
  let gw: TestGateway | undefined;

  beforeAll(async () => {
    mx = await new TestMx().start();
  });
  afterAll(async () => {
    await mx.stop();
  });
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
  });

  async function sendRaw(port: number, body: string): Promise<string> {
    const c = await RawSmtp.connect(port);
    await c.command('EHLO client.test');
    await c.command('MAIL FROM:<a@client.test>');
    await c.command('RCPT TO:<b@dest.test>');
    expect(await c.command('DATA')).toMatch(/^354/);
    c.write(body);
    const reply = await c.read();
    // Whatever follows in the stream must not be taken as commands of a new transaction.
    const next = await c.command('NOOP');
    c.close();
    expect(next).toMatch(/^250/);
    return reply;
  }

  it.each(SEQUENCES)('rejects a body containing %s with 554 5.6.0 and delivers nothing', async (_name, terminator) => {
    gw = await startTestGateway({ delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } }, undefined, checked);
    const before = mx.messages.length;
    const reply = await sendRaw(gw.port, smuggle(terminator));
    expect(reply).toMatch(/^554 5\.6\.0 .*bare CR or LF/);
    // RFC 5321 §4.2: reply text is printable US-ASCII (it once held a "§").
    expect(reply).toMatch(/^[\x20-\x7e]*$/);
    expect(gw.gateway.queue.stats().depth).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(mx.messages.length).toBe(before);
  });

  it.each(['reject', 'normalize'] as const)('rejects <CR><LF>NUL.<CR><LF> with 554 5.6.0 in %s mode and delivers nothing', async (mode) => {
    // Some servers end DATA there; passed on, a next hop of that kind saw a second message.
    gw = await startTestGateway({ smtp: { bareLineEndings: mode }, delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } }, undefined, checked);
    const before = mx.messages.length;
    expect(await sendRaw(gw.port, smuggle('\r\n\x00.\r\n'))).toMatch(/^554 5\.6\.0 .*NUL/);
    expect(gw.gateway.queue.stats().depth).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(mx.messages.length).toBe(before);
  });

  it('normalize mode delivers exactly one message whose body still contains the would-be commands', async () => {
    gw = await startTestGateway({ smtp: { bareLineEndings: 'normalize' }, delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } }, undefined, checked);
    const before = mx.messages.length;
    expect(await sendRaw(gw.port, smuggle('\n.\r\n'))).toMatch(/^250 2\.0\.0 /);
    await mx.waitFor(before + 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(mx.messages.length).toBe(before + 1);
    const got = mx.messages[before]!;
    expect(got.rcptTo).toEqual(['b@dest.test']);
    const text = got.raw.toString('latin1');
    expect(text).toContain('first part\r\n.\r\nMAIL FROM:<ceo@client.test>');
    expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/); // no bare CR or LF left
  });

  it('discards commands pipelined with STARTTLS instead of running them inside TLS', async () => {
    gw = await startTestGateway({ delivery: { routes: { '*': '127.0.0.1:9' } } }, undefined, checked);
    const c = await RawSmtp.connect(gw.port);
    await c.command('EHLO client.test');
    // The injected MAIL FROM travels in the same packet as STARTTLS, in plaintext.
    c.write('STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n');
    expect(await c.read()).toMatch(/^220/);
    await c.startTls();
    expect(await c.command('EHLO client.test')).toMatch(/^250/);
    // Had the injected MAIL run, RCPT would be accepted; it must say MAIL is needed.
    expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^503 /);
    c.close();
  });
});
