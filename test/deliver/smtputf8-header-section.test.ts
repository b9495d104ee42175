import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { openedWithHeaderFacts } from '../../src/deliver/header-section.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/**
 * SMTPUTF8 is needed for UTF-8 header fields (RFC 6531 §3.4), and only the header fields
 * count: for a message sent without the blank line after its headers, its first body lines
 * are in the header section, and their UTF-8 is body text. The section ends where
 * receivers end it (protect/header-end.ts). Over real sockets: a client, the gateway, and
 * next hops with and without SMTPUTF8.
 */
const s = scenario();

const utf8 = (lines: string[]) => Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8');
const HEAD = ['From: dr.jones@client.test', 'To: b@dest.test', 'Subject: Referral'];
const NO_BLANK_LINE = utf8([...HEAD, 'Dear Dr Smith,', 'Grüße aus Köln, Ihre Praxis Müller']);

/** One transaction, MAIL FROM with `params`; the reply to the end of DATA. */
async function send(gw: TestGateway, params: string, message: Buffer): Promise<string> {
  const c = await RawSmtp.connect(gw.port);
  await c.command('EHLO client.test');
  expect(await c.command(`MAIL FROM:<dr.jones@client.test>${params ? ` ${params}` : ''}`)).toMatch(/^250/);
  expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^250/);
  expect(await c.command('DATA')).toMatch(/^354/);
  c.write(Buffer.concat([message, Buffer.from('.\r\n')]));
  const reply = await c.read();
  c.close();
  return reply;
}

async function gatewayTo(offersSmtpUtf8: boolean) {
  const dest = await s.mx({ smtputf8: offersSmtpUtf8 });
  const reports = await s.mx();
  const gw = await s.gateway({ delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${dest.port}`, tls: 'none' }, 'client.test': { nexthop: `127.0.0.1:${reports.port}`, tls: 'none' } } } });
  return { gw, dest, reports };
}

describe('SMTPUTF8 for a message whose UTF-8 is only in body lines left in the header section', () => {
  it('a client that asked for SMTPUTF8, a next hop without it: delivered without it, not bounced with 5.6.7', async () => {
    const { gw, dest } = await gatewayTo(false);
    expect(await send(gw, 'SMTPUTF8 BODY=8BITMIME', NO_BLANK_LINE)).toMatch(/^250 /);
    const settled = await gw.waitForLog((l) => l.event === 'delivery.bounced' || l.event === 'delivery.sent');
    expect(settled).toMatchObject({ event: 'delivery.sent', to: 'b@dest.test' });
    expect(gw.events('delivery.smtputf8')).toMatchObject([{ decision: 'without', reason: 'not-needed', requested: true, utf8Header: false }]);
    await dest.waitFor(1);
    expect(dest.messages[0]!.raw.toString('utf8')).toContain('\r\nGrüße aus Köln, Ihre Praxis Müller\r\n');
  });

  it('a client that did not ask, a next hop with it: not announced (RFC 6531 §3.4: SHOULD NOT for a message that does not need it)', async () => {
    const { gw, dest } = await gatewayTo(true);
    expect(await send(gw, 'BODY=8BITMIME', NO_BLANK_LINE)).toMatch(/^250 /);
    await gw.waitForLog((l) => l.event === 'delivery.sent');
    expect(gw.events('delivery.smtputf8')).toEqual([]);
    // UTF-8 in a header field still is announced.
    expect(await send(gw, 'BODY=8BITMIME', utf8([...HEAD, 'Comments: Grüße', 'Dear Dr Smith,']))).toMatch(/^250 /);
    await gw.waitForLog((l) => l.event === 'delivery.smtputf8');
    expect(gw.events('delivery.smtputf8')).toMatchObject([{ decision: 'smtputf8', reason: 'header', utf8Header: true }]);
    await dest.waitFor(2);
  });
});

describe('openedWithHeaderFacts on a stream', () => {
  it('judges the header fields only, wherever the chunks are cut, and hands every byte on', async () => {
    for (let at = 0; at <= NO_BLANK_LINE.length; at++) {
      const opened = await openedWithHeaderFacts(Readable.from([NO_BLANK_LINE.subarray(0, at), NO_BLANK_LINE.subarray(at)], { objectMode: false }));
      expect(opened.utf8Header, `cut at ${at}`).toBe(false);
      const chunks: Buffer[] = [];
      if (Buffer.isBuffer(opened.body)) chunks.push(opened.body);
      else for await (const c of opened.body) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(NO_BLANK_LINE), `cut at ${at}`).toBe(true);
    }
  });

  it('reads no further than the chunk in which the header section ends', async () => {
    let pulled = 0;
    const chunks = [NO_BLANK_LINE, ...Array.from({ length: 20 }, () => Buffer.alloc(64 * 1024, 'a'))];
    const stream = new Readable({
      read() {
        this.push(chunks[pulled++] ?? null);
      },
    });
    const opened = await openedWithHeaderFacts(stream);
    expect(opened.body).toBe(stream);
    expect(pulled).toBeLessThanOrEqual(2);
    stream.destroy();
  });
});
