import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/ingress/password-hash.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/**
 * What the listener refuses that smtp-server would have taken: a domainless <postmaster>,
 * sendmail's and the proxies' commands, non-ASCII addresses without SMTPUTF8; and
 * IPv4-mapped networks in smtp.clients, which must match IPv4 peers.
 */

const NOWHERE = { delivery: { routes: { '*': '127.0.0.1:9' } } };
let gw: TestGateway | undefined;

afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

async function session(overrides: Record<string, unknown> = {}): Promise<RawSmtp> {
  gw = await startTestGateway({ ...NOWHERE, ...overrides });
  const c = await RawSmtp.connect(gw.port);
  expect(await c.command('EHLO client.test')).toMatch(/^250/);
  return c;
}

/** A command line written as UTF-8 (RawSmtp.command writes latin1). */
async function utf8Command(c: RawSmtp, line: string): Promise<string> {
  c.write(Buffer.from(`${line}\r\n`, 'utf8'));
  return c.read();
}

const UNUSED = ['WIZ secret', 'SHELL', 'KILL', 'XCLIENT ADDR=10.0.0.1', 'XFORWARD ADDR=10.0.0.1'];

describe('ingress: RCPT TO:<postmaster> without a domain', () => {
  it('is refused with 550 5.1.1: the gateway has no mailboxes', async () => {
    const c = await session();
    expect(await c.command('MAIL FROM:<a@client.test>')).toMatch(/^250 /);
    expect(await c.command('RCPT TO:<postmaster>')).toBe('550 5.1.1 No local mailboxes on this gateway; write to postmaster@<your domain>');
    expect(await c.command('RCPT TO:<PostMaster>')).toMatch(/^550 5\.1\.1 /);
    expect(await c.command('RCPT TO:<postmaster@dest.test>')).toMatch(/^250 /);
    c.close();
  });
});

describe('ingress: commands a relay has no use for', () => {
  it('WIZ, SHELL, KILL, XCLIENT and XFORWARD are unknown commands, before and after STARTTLS', async () => {
    const c = await session();
    for (const line of UNUSED) expect(await c.command(line)).toBe('500 5.5.2 Error: command not recognized');
    expect(await c.command('STARTTLS')).toMatch(/^220/);
    await c.startTls();
    expect(await c.command('EHLO client.test')).toMatch(/^250/);
    // Four more (smtp-server closes the session at the tenth unknown command of a connection).
    for (const line of UNUSED.slice(1)) expect(await c.command(line)).toBe('500 5.5.2 Error: command not recognized');
    // The wizard never got in: the session goes on as any other.
    expect(await c.command('MAIL FROM:<a@client.test>')).toMatch(/^250 /);
    c.close();
  });

  it('also with SMTP AUTH users configured (AUTH itself still answered)', async () => {
    const passwordHash = await hashPassword('pw', { N: 1024, r: 8, p: 1 });
    const c = await session({ smtp: { clients: [{ cidr: '127.0.0.0/8' }], auth: { users: [{ username: 'app', passwordHash }] } } });
    for (const line of UNUSED.slice(0, 2)) expect(await c.command(line)).toBe('500 5.5.2 Error: command not recognized');
    expect(await c.command('AUTH PLAIN AGFwcABwdw==')).toMatch(/^538 5\.7\.11 /);
    expect(await c.command('STARTTLS')).toMatch(/^220/);
    await c.startTls();
    expect(await c.command('EHLO client.test')).toMatch(/AUTH PLAIN LOGIN/);
    for (const line of UNUSED) expect(await c.command(line)).toBe('500 5.5.2 Error: command not recognized');
    expect(await c.command(`AUTH PLAIN ${Buffer.from('\0app\0pw').toString('base64')}`)).toMatch(/^235/);
    c.close();
  });
});

describe('ingress: non-ASCII addresses need SMTPUTF8 (RFC 6531)', () => {
  it('MAIL FROM with a non-ASCII address and no SMTPUTF8 gets 553 5.6.7; with it, 250', async () => {
    const c = await session();
    expect(await utf8Command(c, 'MAIL FROM:<jörg@client.test>')).toBe('553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter on MAIL FROM (RFC 6531)');
    expect(await utf8Command(c, 'MAIL FROM:<jörg@client.test> SMTPUTF8')).toMatch(/^250 /);
    c.close();
  });

  it('RCPT TO with a non-ASCII address in a transaction without SMTPUTF8 gets 553 5.6.7', async () => {
    const c = await session();
    expect(await c.command('MAIL FROM:<a@client.test>')).toMatch(/^250 /);
    expect(await utf8Command(c, 'RCPT TO:<jörg@dest.test>')).toMatch(/^553 5\.6\.7 /);
    expect(await c.command('RSET')).toMatch(/^250/);
    expect(await c.command('MAIL FROM:<a@client.test> SMTPUTF8')).toMatch(/^250 /);
    expect(await utf8Command(c, 'RCPT TO:<jörg@dest.test>')).toMatch(/^250 /);
    c.close();
  });

  // smtp-server hands an internationalised domain over in Unicode even when the client sent
  // its A-labels: judged on the domain, every ASCII client writing to one was refused.
  it('an internationalised domain in its xn-- form needs no SMTPUTF8', async () => {
    const c = await session();
    expect(await c.command('MAIL FROM:<dr@xn--mller-kva.example>')).toMatch(/^250 /);
    expect(await c.command('RCPT TO:<pat@xn--bcher-kva.example>')).toMatch(/^250 /);
    c.close();
  });
});

describe('ingress: IPv4-mapped networks in smtp.clients', () => {
  for (const cidr of ['::ffff:127.0.0.1', '::ffff:127.0.0.0/104', '::ffff:7f00:1']) {
    it(`${cidr} admits the IPv4 peer 127.0.0.1`, async () => {
      gw = await startTestGateway({ ...NOWHERE, smtp: { clients: [{ cidr }] } });
      const c = await RawSmtp.connect(gw.port);
      expect(c.greeting).toMatch(/^220 /);
      c.close();
    });
  }
});
