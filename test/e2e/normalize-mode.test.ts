import { describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { scenario } from '../helpers/scenario.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/**
 * smtp.bareLineEndings: normalize, over real sockets: a client with bare CR or LF line
 * endings gets the same message stored and delivered as one with CRLF, and the size limit
 * holds for what is stored.
 */
const s = scenario();

const LIMIT = 10_000;
const HEADER = 'Subject: normalize\r\n\r\n';

async function gatewayTo(mx: TestMx): Promise<TestGateway> {
  return s.gateway({ smtp: { bareLineEndings: 'normalize', limits: { maxMessageSize: LIMIT } }, delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } });
}

/** One transaction; `parts` go as separate writes a little apart (separate TCP segments), their last ending DATA. Returns the reply to it and to a NOOP after it. */
async function transaction(port: number, parts: string[]): Promise<{ reply: string; next: string }> {
  const c = await RawSmtp.connect(port);
  await c.command('EHLO client.test');
  expect(await c.command('MAIL FROM:<a@client.test>')).toMatch(/^250/);
  expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^250/);
  expect(await c.command('DATA')).toMatch(/^354/);
  for (const [i, part] of parts.entries()) {
    if (i) await new Promise((r) => setTimeout(r, 30));
    c.write(part);
  }
  const reply = await c.read();
  // Whatever followed in the stream must not have started a transaction of its own.
  const next = await c.command('NOOP');
  c.close();
  return { reply, next };
}

/** The body the MX received, after the gateway's trace headers. */
const bodyOf = (raw: Buffer) => raw.toString('latin1').slice(raw.indexOf('\r\n\r\n') + 4);

describe('normalize mode: a line after a bare CR is a line like any other', () => {
  it('a leading ".." loses its escape dot after a bare CR as after a bare LF and after CRLF, also when the dots come in the next segment', async () => {
    const mx = await s.mx();
    const gw = await gatewayTo(mx);
    const { reply } = await transaction(gw.port, [
      `${HEADER}after a bare CR\r..one\r\nafter a bare LF\n..two\r\nafter CRLF\r\n..three\r\nsplit after a bare CR\r`,
      '.',
      '.four\r\n.\r\n',
    ]);
    expect(reply).toMatch(/^250 2\.0\.0 /);
    await mx.waitFor(1);
    expect(JSON.stringify(bodyOf(mx.messages[0]!.raw))).toBe(
      JSON.stringify('after a bare CR\r\n.one\r\nafter a bare LF\r\n.two\r\nafter CRLF\r\n.three\r\nsplit after a bare CR\r\n.four\r\n'),
    );
  });

  it.each([
    ['<CR>.<CR><LF>', '\r.\r\n'],
    ['<CR>..<CR><LF>', '\r..\r\n'],
  ])('%s does not end DATA: one message, with the would-be commands as its text', async (_name, terminator) => {
    const mx = await s.mx();
    const gw = await gatewayTo(mx);
    const { reply, next } = await transaction(gw.port, [
      `${HEADER}first part${terminator}`,
      'MAIL FROM:<ceo@client.test>\r\nRCPT TO:<victim@dest.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nwire the money\r\n.\r\n',
    ]);
    expect(reply).toMatch(/^250 2\.0\.0 /);
    expect(next).toMatch(/^250/);
    await mx.waitFor(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(mx.messages).toHaveLength(1);
    expect(mx.messages[0]!.rcptTo).toEqual(['b@dest.test']);
    const body = bodyOf(mx.messages[0]!.raw);
    expect(body).toMatch(/^first part\r\n\.\r\nMAIL FROM:<ceo@client\.test>\r\nRCPT TO:<victim@dest\.test>\r\nDATA\r\nSubject: smuggled\r\n/);
    expect(body.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  });
});

describe('normalize mode: smtp.limits.maxMessageSize holds for the message as stored', () => {
  // HEADER, then k bare LFs (a CRLF each once stored), then the CRLF that ends the last line.
  const bareLfBody = (k: number) => `${HEADER}${'\n'.repeat(k)}\r\n.\r\n`;
  const storedSize = (k: number) => HEADER.length + 2 * k + 2;

  it(`bare LFs that make the stored message 2 bytes over the limit: 552 5.3.4, nothing queued or delivered`, async () => {
    const mx = await s.mx();
    const gw = await gatewayTo(mx);
    const k = (LIMIT - HEADER.length - 2) / 2 + 1;
    expect(storedSize(k)).toBe(LIMIT + 2);
    // As sent, the message is far below the limit.
    expect(bareLfBody(k).length).toBeLessThan(LIMIT * 0.6);
    const { reply, next } = await transaction(gw.port, [bareLfBody(k)]);
    expect(reply).toBe(`552 5.3.4 Message size exceeds fixed limit of ${LIMIT} bytes`);
    expect(next).toMatch(/^250/);
    expect(gw.gateway.queue.stats().depth).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(mx.messages).toHaveLength(0);
  });

  it('bare LFs that make the stored message exactly the limit: taken and delivered', async () => {
    const mx = await s.mx();
    const gw = await gatewayTo(mx);
    const k = (LIMIT - HEADER.length - 2) / 2;
    expect(storedSize(k)).toBe(LIMIT);
    const { reply } = await transaction(gw.port, [bareLfBody(k)]);
    expect(reply).toMatch(/^250 2\.0\.0 /);
    await mx.waitFor(1);
    expect(bodyOf(mx.messages[0]!.raw)).toBe('\r\n'.repeat(k + 1));
  });
});
