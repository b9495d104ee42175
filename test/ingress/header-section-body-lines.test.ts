import { describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/**
 * Over real sockets: the ingress header scan (header-size limit, loop guard) ends the
 * header section where receivers and the rest of Postern end it (protect/header-end.ts),
 * so the body of a message sent without the blank line after its headers is not read as
 * header fields: a long body is no header block over the limit, and a body that quotes a
 * bounce (its Received lines, our own stamp) is no routing loop. What is in the header
 * section is still counted.
 */
const s = scenario();

const HEAD = ['From: dr.jones@client.test', 'To: smith@dest.test', 'Subject: Referral', 'Date: Mon, 23 Nov 2026 10:00:00 +0000'];
const received = (n: number) => Array.from({ length: n }, (_, i) => `Received: from hop${i}.test by hop${i + 1}.test; Mon, 23 Nov 2026 10:00:00 +0000`);

/** One DATA transaction; the reply to the end of DATA. */
async function send(gw: TestGateway, lines: string[]): Promise<string> {
  const c = await RawSmtp.connect(gw.port);
  expect(await c.command('EHLO client.test')).toMatch(/^250/);
  expect(await c.command('MAIL FROM:<dr.jones@client.test>')).toMatch(/^250/);
  expect(await c.command('RCPT TO:<smith@dest.test>')).toMatch(/^250/);
  expect(await c.command('DATA')).toMatch(/^354/);
  c.write(`${lines.join('\r\n')}\r\n.\r\n`);
  const reply = await c.read();
  c.close();
  return reply;
}

async function gatewayWithMx(overrides: Record<string, unknown> = {}) {
  const mx = await s.mx();
  const gw = await s.gateway({ delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } }, ...overrides });
  return { gw, mx };
}

describe('ingress header scan: a message sent without the blank line after its headers', () => {
  it('a body that quotes a bounce (Received lines, our stamp twice) after its first line is accepted and delivered; the same lines as header fields are a loop', async () => {
    const { gw, mx } = await gatewayWithMx({ smtp: { loopGuard: { maxReceived: 5 } } });
    const quoted = ['Dear Dr Smith,', 'the lab system bounced my last mail, this is what came back:', ...received(8), 'X-Postern-Loop: postern.test', 'X-Postern-Loop: postern.test', '', 'Kind regards'];
    const reply = await send(gw, [...HEAD, ...quoted]);
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await mx.waitFor(1);
    expect(mx.messages[0]!.raw.toString('latin1')).toContain('\r\nDear Dr Smith,\r\n');
    // The guard still counts what is in the header section.
    expect(await send(gw, [...received(6), ...HEAD, '', 'body'])).toMatch(/^554 5\.4\.6 .*too many Received headers \(6\)/);
    expect(await send(gw, [...HEAD, 'X-Postern-Loop: postern.test', 'X-Postern-Loop: postern.test', 'Results attached.'])).toMatch(/^554 5\.4\.6 Routing loop/);
  });

  it('a body longer than smtp.limits.maxHeaderSize is no header block over the limit; header fields over it still are', async () => {
    const { gw, mx } = await gatewayWithMx({ smtp: { limits: { maxHeaderSize: '4KB' } } });
    const body = ['Results attached.', ...Array.from({ length: 200 }, (_, i) => `line ${i}: ${'x'.repeat(60)}`)];
    expect(await send(gw, [...HEAD, ...body])).toMatch(/^250 2\.0\.0 Ok: queued as /);
    // One body line far longer than the limit, straight after the header fields.
    expect(await send(gw, [...HEAD, `Dear Dr Smith, ${'y'.repeat(10_000)}`])).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await mx.waitFor(2);
    const fields = Array.from({ length: 80 }, (_, i) => `X-Filler-${i}: ${'y'.repeat(60)}`);
    expect(await send(gw, [...HEAD, ...fields, 'Results attached.'])).toMatch(/^552 5\.3\.4 Message header block exceeds 4096 bytes/);
  });
});

describe('ingress: a message whose first line starts with a space or tab', () => {
  // No header field for it to continue: readers take the whole message as body. Right under
  // our X-Postern-Loop field it read as that field's continuation (the stamp's value
  // changed, the client's line became ours); a blank line between keeps both as read.
  it('is stored after a blank line below our trace fields, so our stamp stays ours and the message stays as sent', async () => {
    const { gw, mx } = await gatewayWithMx();
    expect(await send(gw, [' indented first line', 'Subject: Referral', '', 'Results attached.'])).toMatch(/^250 /);
    await mx.waitFor(1);
    const raw = mx.messages[0]!.raw.toString('latin1');
    expect(raw).toMatch(/\r\nX-Postern-Loop: postern\.test\r\n\r\n indented first line\r\nSubject: Referral\r\n\r\nResults attached\.\r\n$/);
  });

  it('an ordinary message gets nothing between our fields and its own', async () => {
    const { gw, mx } = await gatewayWithMx();
    expect(await send(gw, [...HEAD, '', 'Results attached.'])).toMatch(/^250 /);
    await mx.waitFor(1);
    expect(mx.messages[0]!.raw.toString('latin1')).toContain('\r\nX-Postern-Loop: postern.test\r\nFrom: dr.jones@client.test\r\n');
  });
});
