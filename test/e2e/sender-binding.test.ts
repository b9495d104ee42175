import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/ingress/password-hash.js';
import { dkimConfig, makeDkimKey, mailauthVerify, type TestDkimKey } from '../helpers/dkim.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { RawSmtp, testMessage } from '../helpers/smtp-client.js';

/**
 * A client bound to sender domains (smtp.clients[].senderDomains: on the shared Microsoft
 * 365 / Google ranges, what keeps other tenants out) can neither relay anything with the
 * null sender <> nor get its From signed with another tenant's DKIM key.
 */

let gw: TestGateway | undefined;
let mx: TestMx | undefined;

afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  await mx?.stop();
  mx = undefined;
});

const TENANT_A = { name: 'tenant-a', cidr: ['127.0.0.0/8'], senderDomains: ['tenant-a.test'] };

/** A gateway relaying to a test MX, with the client entry and DKIM keys given. */
async function gatewayTo(client: Record<string, unknown>, keys: TestDkimKey[] = []): Promise<TestGateway> {
  mx = await new TestMx().start();
  gw = await startTestGateway({
    ...(keys.length ? { dkim: dkimConfig(keys) } : {}),
    delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } },
    smtp: { clients: [client] },
  });
  return gw;
}

/** One transaction; the reply to the end of DATA. */
async function send(port: number, mailFrom: string, from: string | undefined, to = 'victim@dest.test'): Promise<string> {
  const c = await RawSmtp.connect(port);
  try {
    expect(await c.command('EHLO client.test')).toMatch(/^250/);
    expect(await c.command(`MAIL FROM:<${mailFrom}>`)).toMatch(/^250 /);
    expect(await c.command(`RCPT TO:<${to}>`)).toMatch(/^250 /);
    expect(await c.command('DATA')).toMatch(/^354/);
    const message = testMessage({ from: from ?? 'x', to, subject: 'pay this invoice' });
    // Without a From: the test message's From line left out.
    c.write(from === undefined ? Buffer.from(message.toString('latin1').replace(/^From: x\r\n/, ''), 'latin1') : message);
    return await c.command('.');
  } finally {
    c.close();
  }
}

describe('sender binding: the null sender', () => {
  it('a bound client sending MAIL FROM:<> with a From outside its sender domains gets 550 5.7.1 naming the From domain, and nothing is queued', async () => {
    const g = await gatewayTo(TENANT_A);
    expect(await send(g.port, '', 'CEO <ceo@tenant-b.test>')).toBe('550 5.7.1 From domain tenant-b.test is not permitted for this client with the null sender <>');
    expect(await send(g.port, '', 'a@tenant-a.test, b@victim.test')).toMatch(/^550 5\.7\.1 From domain victim\.test /);
    expect(g.events('queue.accepted')).toHaveLength(0);
    expect(g.events('smtp.reject').map((l) => l.stage)).toEqual(['data', 'data']);
  });

  it('a bound client sending MAIL FROM:<> without any From address gets 550 5.7.1', async () => {
    const g = await gatewayTo(TENANT_A);
    expect(await send(g.port, '', undefined)).toBe('550 5.7.1 A message with the null sender <> must have a From address in the sender domains of this client');
    expect(await send(g.port, '', 'Undisclosed:;')).toMatch(/^550 5\.7\.1 /);
  });

  it('an out-of-office reply (MAIL FROM:<>, From a tenant user, in any spelling) is relayed', async () => {
    const g = await gatewayTo({ ...TENANT_A, senderDomains: ['tenant-a.test', 'bücher.example'] });
    expect(await send(g.port, '', 'Pat <pat@Tenant-A.test>')).toMatch(/^250 2\.0\.0 /);
    expect(await send(g.port, '', 'pat@xn--bcher-kva.example')).toMatch(/^250 2\.0\.0 /);
    await mx!.waitFor(2);
    expect(mx!.messages.map((m) => m.mailFrom)).toEqual(['', '']);
  });

  it('a forwarded message (envelope sender rewritten to a tenant domain, From an outside author) is relayed', async () => {
    const g = await gatewayTo(TENANT_A);
    expect(await send(g.port, 'SRS0=abcd=XY=outside.test=author@tenant-a.test', 'author@outside.test')).toMatch(/^250 2\.0\.0 /);
    await mx!.waitFor(1);
  });

  it("an AUTH user's senderDomains bind the null sender the same way", async () => {
    const passwordHash = await hashPassword('pw', { N: 1024, r: 8, p: 1 });
    mx = await new TestMx().start();
    gw = await startTestGateway({
      delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } },
      smtp: { clients: [{ cidr: '10.0.0.0/8' }], auth: { users: [{ username: 'app', passwordHash, senderDomains: ['app.test'] }] } },
    });
    const c = await RawSmtp.connect(gw.port);
    await c.command('EHLO client.test');
    expect(await c.command('STARTTLS')).toMatch(/^220/);
    await c.startTls();
    await c.command('EHLO client.test');
    expect(await c.command(`AUTH PLAIN ${Buffer.from('\0app\0pw').toString('base64')}`)).toMatch(/^235/);
    for (const [from, answer] of [['ceo@tenant-b.test', /^550 5\.7\.1 From domain tenant-b\.test /], ['robot@app.test', /^250 2\.0\.0 /]] as const) {
      expect(await c.command('MAIL FROM:<>')).toMatch(/^250 /);
      expect(await c.command('RCPT TO:<victim@dest.test>')).toMatch(/^250 /);
      expect(await c.command('DATA')).toMatch(/^354/);
      c.write(testMessage({ from, to: 'victim@dest.test' }));
      expect(await c.command('.')).toMatch(answer);
    }
    c.close();
  });

  it('an unbound client keeps relaying the null sender with any From', async () => {
    const g = await gatewayTo({ name: 'loopback', cidr: ['127.0.0.0/8'] });
    expect(await send(g.port, '', 'ceo@tenant-b.test')).toMatch(/^250 2\.0\.0 /);
    await mx!.waitFor(1);
  });
});

describe('sender binding: DKIM', () => {
  it('a client bound to tenant-a.test gets no tenant-b.test signature on a From it wrote, and a dkim.unsigned warning says why', async () => {
    const keyA = makeDkimKey('tenant-a.test', 'sel');
    const keyB = makeDkimKey('tenant-b.test', 'sel');
    const g = await gatewayTo(TENANT_A, [keyA, keyB]);
    expect(await send(g.port, 'user@tenant-a.test', 'CEO <ceo@tenant-b.test>')).toMatch(/^250 2\.0\.0 /);
    await mx!.waitFor(1);
    expect(mx!.messages[0]!.raw.toString('latin1')).not.toMatch(/^DKIM-Signature:/im);
    expect(g.events('dkim.signed')).toHaveLength(0);
    const unsigned = g.events('dkim.unsigned');
    expect(unsigned).toHaveLength(1);
    expect(unsigned[0]).toMatchObject({ level: 'warn', fromDomain: 'tenant-b.test', reason: "From domain outside the client's senderDomains" });
  });

  it('its own domain is still signed', async () => {
    const keyA = makeDkimKey('tenant-a.test', 'sel');
    const g = await gatewayTo(TENANT_A, [keyA]);
    expect(await send(g.port, 'user@tenant-a.test', 'User <user@tenant-a.test>')).toMatch(/^250 2\.0\.0 /);
    expect(await send(g.port, '', 'user@tenant-a.test')).toMatch(/^250 2\.0\.0 /);
    await mx!.waitFor(2);
    for (const m of mx!.messages) expect(await mailauthVerify(m.raw, [keyA])).toEqual([expect.objectContaining({ status: 'pass', domain: 'tenant-a.test' })]);
  });

  it('a client without senderDomains is signed for its From domain, as before', async () => {
    const keyB = makeDkimKey('tenant-b.test', 'sel');
    const g = await gatewayTo({ name: 'loopback', cidr: ['127.0.0.0/8'] }, [keyB]);
    expect(await send(g.port, 'user@tenant-a.test', 'ceo@tenant-b.test')).toMatch(/^250 2\.0\.0 /);
    await mx!.waitFor(1);
    expect(await mailauthVerify(mx!.messages[0]!.raw, [keyB])).toEqual([expect.objectContaining({ status: 'pass', domain: 'tenant-b.test' })]);
  });
});
