import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { RawSmtp, testMessage } from '../helpers/smtp-client.js';

/**
 * The HELO name is the client's free text. In our Received line a name that is no domain
 * must not end the field early (';'), open or close a comment ('(' ')'), or bring UTF-8
 * into the header section (which makes the message need SMTPUTF8 at the next hop).
 */

let gw: TestGateway | undefined;
let mx: TestMx | undefined;

afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  await mx?.stop();
  mx = undefined;
});

async function relayTo(mxOptions: { smtputf8?: boolean } = {}): Promise<TestGateway> {
  mx = await new TestMx(mxOptions).start();
  gw = await startTestGateway({ delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } });
  return gw;
}

/** Sends one all-ASCII message after `EHLO <helo>` (written as UTF-8). */
async function sendWithHelo(port: number, helo: string, mailParams = ''): Promise<void> {
  const c = await RawSmtp.connect(port);
  try {
    c.write(Buffer.from(`EHLO ${helo}\r\n`, 'utf8'));
    expect(await c.read()).toMatch(/^250/);
    expect(await c.command(`MAIL FROM:<a@client.test>${mailParams}`)).toMatch(/^250 /);
    expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^250 /);
    expect(await c.command('DATA')).toMatch(/^354/);
    c.write(testMessage({ from: 'a@client.test', to: 'b@dest.test' }));
    expect(await c.command('.')).toMatch(/^250 2\.0\.0 /);
  } finally {
    c.close();
  }
}

/** Our Received field of a delivered message, unfolded. */
function ourReceived(raw: Buffer): string {
  const field = /^Received: from [^\r\n]*(?:\r\n[ \t][^\r\n]*)*/m.exec(raw.toString('latin1'))?.[0] ?? '';
  return field.replace(/\r\n[ \t]/g, ' ');
}

/** The Received grammar's shape: from <token> (<comment>) by <host> (Postern) with <proto> id <id> for <addr>; <date>. */
const PARSEABLE = /^Received: from [A-Za-z0-9.\-_%[\]:]+ \(unknown \[127\.0\.0\.1\]\) by postern\.test \(Postern\) with ESMTP id \w+ for <b@dest\.test>; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000$/;

describe('Received: the HELO name', () => {
  it('a HELO name with parentheses, semicolons or UTF-8 is percent-encoded, and the field keeps its shape', async () => {
    const g = await relayTo();
    const helos = ['evil(', 'x;Mon,_1_Jan_2001', 'a)by(trusted.example', 'MÜLLER_PC', 'back\\slash'];
    for (const helo of helos) await sendWithHelo(g.port, helo);
    await mx!.waitFor(helos.length);
    const fields = mx!.messages.map((m) => ourReceived(m.raw));
    for (const f of fields) expect(f).toMatch(PARSEABLE);
    // smtp-server lower-cases the name before Postern sees it.
    expect(fields.map((f) => f.split(' ')[2])).toEqual(['evil%28', 'x%3Bmon%2C_1_jan_2001', 'a%29by%28trusted.example', 'm%C3%BCller_pc', 'back%5Cslash']);
  });

  it('domain names and address literals are written as they came, an IDN as A-labels', async () => {
    const g = await relayTo();
    const helos = ['mail.client.test', '[127.0.0.1]', '[IPv6:::1]', 'mail.bücher.example', 'localhost'];
    for (const helo of helos) await sendWithHelo(g.port, helo);
    await mx!.waitFor(helos.length);
    expect(mx!.messages.map((m) => ourReceived(m.raw).split(' ')[2])).toEqual(['mail.client.test', '[127.0.0.1]', '[ipv6:::1]', 'mail.xn--bcher-kva.example', 'localhost']);
  });

  it('a UTF-8 HELO name does not make an all-ASCII SMTPUTF8 message need SMTPUTF8 at a next hop without it', async () => {
    const g = await relayTo({ smtputf8: false });
    await sendWithHelo(g.port, 'MÜLLER_PC', ' SMTPUTF8');
    // The outcome, either way: sent, or refused 5.6.7 (the message needs SMTPUTF8, the next hop lacks it).
    const outcome = await g.waitForLog((l) => l.event === 'delivery.sent' || l.event === 'delivery.bounced');
    expect(outcome).toMatchObject({ event: 'delivery.sent' });
    expect(mx!.messages[0]!.raw.every((b) => b < 0x80)).toBe(true);
  });
});
