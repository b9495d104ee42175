import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/ingress/password-hash.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { findProgram } from '../helpers/programs.js';

const openssl = findProgram('openssl');

/** `openssl s_client -starttls smtp` with one protocol version flag; its exit code and all it printed. */
function opensslStartTls(port: number, versionFlag: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    // stdin at EOF: s_client does the handshake, reports it (-brief) and ends the session.
    const child = spawn(openssl as string, ['s_client', '-starttls', 'smtp', '-connect', `127.0.0.1:${port}`, versionFlag, '-brief'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => resolve({ code, output }));
  });
}

const NOWHERE = { delivery: { routes: { '*': '127.0.0.1:9' } } };
let gw: TestGateway | undefined;

afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

async function session(overrides: Record<string, unknown> = {}): Promise<RawSmtp> {
  gw = await startTestGateway({ ...NOWHERE, ...overrides });
  return RawSmtp.connect(gw.port);
}

/** EHLO, STARTTLS, EHLO again. */
async function tlsSession(c: RawSmtp): Promise<void> {
  await c.command('EHLO client.test');
  expect(await c.command('STARTTLS')).toMatch(/^220/);
  await c.startTls();
  expect(await c.command('EHLO client.test')).toMatch(/AUTH PLAIN LOGIN/);
}

async function ready(c: RawSmtp, from = 'sender@client.test'): Promise<void> {
  expect(await c.command('EHLO client.test')).toMatch(/^250/);
  expect(await c.command(`MAIL FROM:<${from}>`)).toMatch(/^250 2\.1\.0/);
}

describe('ingress: greeting and capabilities', () => {
  it('greets and advertises exactly what it supports', async () => {
    const c = await session();
    expect(c.greeting).toMatch(/^220 postern\.test ESMTP Postern/);
    const ehlo = await c.command('EHLO client.test');
    const lines = ehlo.split(/\r?\n/).map((l) => l.slice(4));
    for (const ext of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'STARTTLS', `SIZE ${50 * 1024 * 1024}`]) expect(lines).toContain(ext);
    expect(ehlo).not.toMatch(/\bDSN\b/);
    expect(ehlo).not.toMatch(/\bAUTH\b/); // no SMTP AUTH users configured
    expect(ehlo).not.toMatch(/REQUIRETLS/);
    c.close();
  });
});

describe('ingress: connection log', () => {
  it('logs each accepted connection as smtp.connect at info, the default level', async () => {
    const c = await session({ log: { level: 'info' }, smtp: { clients: [{ name: 'loopback-relay', cidr: ['127.0.0.0/8'] }] } });
    expect(await c.command('EHLO client.test')).toMatch(/^250/);
    const line = await gw!.waitForLog((l) => l.event === 'smtp.connect');
    expect(line).toMatchObject({ level: 'info', ip: '127.0.0.1', client: 'loopback-relay', sessionId: expect.any(String) });
    c.close();
  });
});

describe('ingress: client authorisation', () => {
  it('refuses a client outside smtp.clients at connect with 554 5.7.1', async () => {
    gw = await startTestGateway({ ...NOWHERE, smtp: { clients: [{ cidr: '10.0.0.0/8' }] } });
    const c = await RawSmtp.connect(gw.port);
    expect(c.greeting).toMatch(/^554 5\.7\.1 /);
    expect(gw.events('smtp.reject').some((l) => l.stage === 'connect' && l.code === 554)).toBe(true);
    c.close();
  });

  it.each([
    ['percent hack', 'user%other.test@dest.test'],
    ['bang path', 'other.test!user@dest.test'],
    ['source route', '@relay.test:user@dest.test'],
    ['source route list', '@a.test,@b.test:user@dest.test'],
    ['quoted local part with @', '"user@other.test"@dest.test'],
  ])('refuses the relay-test form %s with 550 5.7.1', async (_name, rcpt) => {
    const c = await session();
    await ready(c);
    expect(await c.command(`RCPT TO:<${rcpt}>`)).toMatch(/^550 5\.7\.1 Relay access denied/);
    // A normal recipient on the same transaction is still fine.
    expect(await c.command('RCPT TO:<user@dest.test>')).toMatch(/^250 2\.1\.5/);
    c.close();
  });

  it('binds a client to its sender domains: others get 550 5.7.1, the null sender is allowed', async () => {
    const c = await session({ smtp: { clients: [{ cidr: '127.0.0.0/8', senderDomains: ['client.test', '*.corp.test'] }] } });
    expect(await c.command('EHLO client.test')).toMatch(/^250/);
    expect(await c.command('MAIL FROM:<ceo@evil.test>')).toMatch(/^550 5\.7\.1 Sender domain evil\.test/);
    expect(await c.command('MAIL FROM:<a@mail.corp.test>')).toMatch(/^250/);
    expect(await c.command('RSET')).toMatch(/^250/);
    expect(await c.command('MAIL FROM:<a@client.test>')).toMatch(/^250/);
    expect(await c.command('RSET')).toMatch(/^250/);
    expect(await c.command('MAIL FROM:<>')).toMatch(/^250/);
    c.close();
  });

  it('requires STARTTLS before MAIL when the client entry says so (530 5.7.0)', async () => {
    const c = await session({ smtp: { clients: [{ cidr: '127.0.0.0/8', requireTls: true }] } });
    expect(await c.command('EHLO client.test')).toMatch(/STARTTLS/);
    expect(await c.command('MAIL FROM:<a@client.test>')).toMatch(/^530 5\.7\.0 /);
    expect(await c.command('STARTTLS')).toMatch(/^220/);
    await c.startTls();
    expect(await c.command('EHLO client.test')).toMatch(/^250/);
    expect(await c.command('MAIL FROM:<a@client.test>')).toMatch(/^250 2\.1\.0/);
    c.close();
  });
});

describe('ingress: SMTP AUTH for submission clients', () => {
  it('offers AUTH only over TLS, rejects bad credentials with 535 5.7.8 and relays after success', async () => {
    const passwordHash = await hashPassword('correct horse battery staple', { N: 1024, r: 8, p: 1 });
    // 127.0.0.1 is NOT a listed client here: only authentication can grant relaying.
    const c = await session({ smtp: { clients: [{ cidr: '10.0.0.0/8' }], auth: { users: [{ username: 'app', passwordHash, senderDomains: ['app.test'] }] } } });
    expect(c.greeting).toMatch(/^220/);
    expect(await c.command('EHLO client.test')).not.toMatch(/AUTH/);
    // Refused before TLS, telling the client what to do; the password is not even looked at.
    expect(await c.command(`AUTH PLAIN ${Buffer.from('\0app\0correct horse battery staple').toString('base64')}`)).toMatch(/^538 5\.7\.11 /);
    expect(await c.command('MAIL FROM:<x@app.test>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<user@dest.test>')).toMatch(/^550 5\.7\.1 Relay access denied/);
    expect(await c.command('RSET')).toMatch(/^250/);
    expect(await c.command('STARTTLS')).toMatch(/^220/);
    await c.startTls();
    expect(await c.command('EHLO client.test')).toMatch(/AUTH PLAIN LOGIN/);
    expect(await c.command(`AUTH PLAIN ${Buffer.from('\0app\0wrong password').toString('base64')}`)).toMatch(/^535 5\.7\.8 /);
    expect(await c.command(`AUTH PLAIN ${Buffer.from('\0app\0correct horse battery staple').toString('base64')}`)).toMatch(/^235/);
    expect(await c.command('MAIL FROM:<x@other.test>')).toMatch(/^550 5\.7\.1 /);
    expect(await c.command('RSET')).toMatch(/^250/);
    expect(await c.command('MAIL FROM:<x@app.test>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<user@dest.test>')).toMatch(/^250/);
    expect(gw!.events('smtp.auth').map((l) => l.ok)).toEqual([false, true]);
    expect(JSON.stringify(gw!.logs)).not.toContain('correct horse');
    c.close();
  });

  it('AUTH LOGIN over TLS: a wrong password gets 535 5.7.8, the right one 235 2.7.0', async () => {
    const passwordHash = await hashPassword('login method password', { N: 1024, r: 8, p: 1 });
    const c = await session({ smtp: { clients: [{ cidr: '10.0.0.0/8' }], auth: { users: [{ username: 'scanner', passwordHash }], failureDelay: 0 } } });
    await tlsSession(c);
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    const login = async (password: string) => {
      expect(await c.command('AUTH LOGIN')).toBe(`334 ${b64('Username:')}`);
      expect(await c.command(b64('scanner'))).toBe(`334 ${b64('Password:')}`);
      return c.command(b64(password));
    };
    expect(await login('not the password')).toMatch(/^535 5\.7\.8 /);
    expect(await login('login method password')).toMatch(/^235 2\.7\.0 /);
    expect(await c.command('MAIL FROM:<x@app.test>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<user@dest.test>')).toMatch(/^250/);
    expect(gw!.events('smtp.auth').map((l) => [l.method, l.ok])).toEqual([['LOGIN', false], ['LOGIN', true]]);
    expect(JSON.stringify(gw!.logs)).not.toContain('login method password');
    c.close();
  });

  it('after smtp.auth.maxFailures failures an address gets 454 4.7.0 to every AUTH until the lockout ends', async () => {
    const passwordHash = await hashPassword('the real password', { N: 1024, r: 8, p: 1 });
    const auth = { users: [{ username: 'app', passwordHash }], maxFailures: 3, failureWindow: '1m', lockout: '2s', failureDelay: '300ms' };
    const c = await session({ smtp: { clients: [{ cidr: '10.0.0.0/8' }], auth } });
    await tlsSession(c);
    const plain = (password: string) => c.command(`AUTH PLAIN ${Buffer.from(`\0app\0${password}`).toString('base64')}`);
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      expect(await plain(`guess ${i}`)).toMatch(/^535 5\.7\.8 /);
      // Each failure is answered only after smtp.auth.failureDelay.
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    }
    // Locked out: even the right password is refused, on this session and on a new one.
    expect(await plain('the real password')).toMatch(/^454 4\.7\.0 /);
    const other = await RawSmtp.connect(gw!.port);
    await tlsSession(other);
    expect(await other.command(`AUTH PLAIN ${Buffer.from('\0app\0the real password').toString('base64')}`)).toMatch(/^454 4\.7\.0 /);
    expect(gw!.events('smtp.auth-locked')).toEqual([expect.objectContaining({ ip: '127.0.0.1', failures: 3, lockoutMs: 2000 })]);
    expect(JSON.stringify(gw!.logs)).not.toMatch(/the real password|guess \d/);

    // The lock ends by itself.
    await new Promise((r) => setTimeout(r, 2100));
    expect(await plain('the real password')).toMatch(/^235 2\.7\.0 /);
    c.close();
    other.close();
  });
});

describe('ingress: limits', () => {
  it('refuses MAIL FROM and RCPT TO parameters of extensions it does not offer with 555 5.5.4 (RFC 5321 §4.1.1.11)', async () => {
    // smtp-server took them silently: REQUIRETLS or NOTIFY=NEVER would have been promises
    // nothing keeps (neither REQUIRETLS nor DSN is offered).
    const c = await session();
    await c.command('EHLO client.test');
    expect(await c.command('STARTTLS')).toMatch(/^220/);
    await c.startTls();
    expect(await c.command('EHLO client.test')).toMatch(/^250/);
    expect(await c.command('MAIL FROM:<sender@client.test> REQUIRETLS')).toMatch(/^555 5\.5\.4 MAIL FROM parameter REQUIRETLS is not supported/);
    expect(await c.command('MAIL FROM:<sender@client.test> X-FOO=bar')).toMatch(/^555 5\.5\.4 MAIL FROM parameter X-FOO/);
    expect(await c.command('MAIL FROM:<sender@client.test> RET=HDRS')).toMatch(/^555 5\.5\.4 /);
    expect(await c.command('MAIL FROM:<sender@client.test> SIZE=100 BODY=8BITMIME SMTPUTF8')).toMatch(/^250 2\.1\.0/);
    expect(await c.command('RCPT TO:<b@dest.test> NOTIFY=NEVER')).toMatch(/^555 5\.5\.4 RCPT TO parameter NOTIFY is not supported/);
    expect(await c.command('RCPT TO:<b@dest.test> ORCPT=rfc822;b@dest.test')).toMatch(/^555 5\.5\.4 /);
    expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^250 2\.1\.5/);
    c.close();
  });

  it('caps recipients per message with 452 4.5.3', async () => {
    const c = await session({ smtp: { limits: { maxRecipients: 2 } } });
    await ready(c);
    expect(await c.command('RCPT TO:<a@dest.test>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<c@dest.test>')).toMatch(/^452 4\.5\.3 /);
    c.close();
  });

  it('refuses an announced SIZE over the limit and a body that grows past it, with 552 5.3.4', async () => {
    const c = await session({ smtp: { limits: { maxMessageSize: '10KB' } } });
    expect(await c.command('EHLO client.test')).toMatch(/SIZE 10240/);
    expect(await c.command('MAIL FROM:<a@client.test> SIZE=20000')).toMatch(/^552 5\.3\.4 /);
    expect(await c.command('MAIL FROM:<a@client.test> SIZE=1000')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^250/);
    expect(await c.command('DATA')).toMatch(/^354/);
    c.write(`Subject: big\r\n\r\n${`${'x'.repeat(998)}\r\n`.repeat(15)}.\r\n`);
    expect(await c.read()).toMatch(/^552 5\.3\.4 /);
    // The session stays usable and nothing was queued.
    expect(await c.command('NOOP')).toMatch(/^250/);
    expect(gw!.gateway.queue.stats().depth).toBe(0);
    c.close();
  });

  it('refuses a header block over smtp.limits.maxHeaderSize with 552 5.3.4', async () => {
    const c = await session({ smtp: { limits: { maxHeaderSize: '1KB' } } });
    await ready(c);
    expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^250/);
    expect(await c.command('DATA')).toMatch(/^354/);
    c.write(`${Array.from({ length: 40 }, (_, i) => `X-Filler-${i}: ${'y'.repeat(60)}`).join('\r\n')}\r\n\r\nbody\r\n.\r\n`);
    expect(await c.read()).toMatch(/^552 5\.3\.4 Message header block exceeds 1024 bytes/);
    expect(gw!.gateway.queue.stats().depth).toBe(0);
    c.close();
  });

  /** Two sessions are let in, the third is refused with `refusal`; a closed one frees its place. */
  async function connectionLimit(limits: Record<string, unknown>, refusal: RegExp): Promise<void> {
    gw = await startTestGateway({ ...NOWHERE, smtp: { limits } });
    const a = await RawSmtp.connect(gw.port);
    const b = await RawSmtp.connect(gw.port);
    const c = await RawSmtp.connect(gw.port);
    expect(a.greeting).toMatch(/^220/);
    expect(b.greeting).toMatch(/^220/);
    expect(c.greeting).toMatch(refusal);
    a.close();
    await new Promise((r) => setTimeout(r, 100));
    const d = await RawSmtp.connect(gw.port);
    expect(d.greeting).toMatch(/^220/);
    for (const x of [b, c, d]) x.close();
  }

  it('limits connections in total (smtp.limits.maxConnections) with 421 4.3.2', () => connectionLimit({ maxConnections: 2 }, /^421 4\.3\.2 /));

  it('a body that does not end within smtp.limits.dataTimeout gets 421 4.4.2, the session is closed and nothing is queued', async () => {
    const c = await session({ smtp: { limits: { dataTimeout: '500ms' } } });
    await ready(c);
    expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^250/);
    expect(await c.command('DATA')).toMatch(/^354/);
    const reply = c.read(10_000);
    // Trickled, so the command (idle) timeout never fires: only the DATA deadline can end it.
    for (let i = 0; i < 20 && !c.closed; i++) {
      c.write(`Subject: slow\r\nline ${i}\r\n`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await reply).toMatch(/^421 4\.4\.2 .*dataTimeout/);
    await new Promise((r) => setTimeout(r, 200));
    expect(c.closed).toBe(true);
    expect(gw!.gateway.queue.stats().depth).toBe(0);
    expect(gw!.events('smtp.reject').at(-1)).toMatchObject({ stage: 'data', code: 421 });
  });

  it('limits connections per client IP with 421 4.7.0', () => connectionLimit({ maxConnectionsPerIp: 2 }, /^421 4\.7\.0 /));
});

describe('ingress: loop guard', () => {
  async function sendWithHeaders(headers: string[]): Promise<string> {
    const c = await RawSmtp.connect(gw!.port);
    await ready(c);
    expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^250/);
    expect(await c.command('DATA')).toMatch(/^354/);
    c.write(`${[...headers, 'Subject: loop test'].join('\r\n')}\r\n\r\nbody\r\n.\r\n`);
    const r = await c.read();
    c.close();
    return r;
  }

  it('rejects a message that already carries our stamp twice with 554 5.4.6', async () => {
    gw = await startTestGateway(NOWHERE);
    expect(await sendWithHeaders(['X-Postern-Loop: postern.test', 'X-Postern-Loop: postern.test'])).toMatch(/^554 5\.4\.6 Routing loop/);
    // Once is a legitimate second pass (e.g. through M365 and back); other gateways' stamps don't count.
    expect(await sendWithHeaders(['X-Postern-Loop: postern.test', 'X-Postern-Loop: other.example', 'X-Postern-Loop: other.example'])).toMatch(/^250 2\.0\.0 Ok: queued as /);
  });

  it('rejects a message with more Received headers than loopGuard.maxReceived', async () => {
    gw = await startTestGateway({ ...NOWHERE, smtp: { loopGuard: { maxReceived: 5 } } });
    const received = (n: number) => Array.from({ length: n }, (_, i) => `Received: from hop${i}.test by hop${i + 1}.test; Mon, 23 Nov 2026 10:00:00 +0000`);
    expect(await sendWithHeaders(received(6))).toMatch(/^554 5\.4\.6 .*too many Received headers \(6\)/);
    expect(await sendWithHeaders(received(5))).toMatch(/^250 /);
  });
});

describe('ingress: durability', () => {
  async function sendBody(body: string): Promise<string> {
    const c = await RawSmtp.connect(gw!.port);
    await ready(c);
    expect(await c.command('RCPT TO:<b@dest.test>')).toMatch(/^250/);
    expect(await c.command('DATA')).toMatch(/^354/);
    c.write(`Subject: x\r\n\r\n${body}\r\n.\r\n`);
    const reply = await c.read();
    c.close();
    return reply;
  }

  it('answers 451 4.3.0 and keeps nothing when a large message cannot be stored', async () => {
    const { rmSync, writeFileSync, readdirSync } = await import('node:fs');
    const { join } = await import('node:path');
    gw = await startTestGateway(NOWHERE);
    const spool = join(gw.dataDir, 'spool', '0');
    rmSync(join(spool, 'tmp'), { recursive: true, force: true });
    writeFileSync(join(spool, 'tmp'), 'a file where the spool expects a directory');
    expect(await sendBody(`${'y'.repeat(998)}\r\n`.repeat(300))).toMatch(/^451 4\.3\.0 /);
    expect(gw.gateway.queue.stats().depth).toBe(0);
    expect(readdirSync(join(spool, 'msg'))).toEqual([]);
    expect(gw.events('queue.failed')).toHaveLength(1);
  });

  it('answers 451 4.3.0 when the segment log cannot be written, and accepts again afterwards', async () => {
    gw = await startTestGateway(NOWHERE);
    // A descriptor number no process has: the next write fails with EBADF, like a dead disk.
    Object.assign((gw.gateway.queue as unknown as { log: object }).log, { fd: 1_000_000, syncFd: 1_000_001 });
    expect(await sendBody('small')).toMatch(/^451 4\.3\.0 /);
    expect(gw.gateway.queue.stats().depth).toBe(0);
    expect(await sendBody('small again')).toMatch(/^250 2\.0\.0 /);
  });
});

describe('ingress: network and user sender restrictions combine', () => {
  it('logging in never widens the sender domains a network rule allows', async () => {
    const passwordHash = await hashPassword('another long password', { N: 1024, r: 8, p: 1 });
    const c = await session({
      smtp: { clients: [{ cidr: '127.0.0.0/8', senderDomains: ['client.test'] }], auth: { users: [{ username: 'free', passwordHash }] } },
    });
    await c.command('EHLO client.test');
    expect(await c.command('STARTTLS')).toMatch(/^220/);
    await c.startTls();
    await c.command('EHLO client.test');
    expect(await c.command(`AUTH PLAIN ${Buffer.from('\0free\0another long password').toString('base64')}`)).toMatch(/^235/);
    expect(await c.command('MAIL FROM:<x@elsewhere.test>')).toMatch(/^550 5\.7\.1 /);
    expect(await c.command('MAIL FROM:<x@client.test>')).toMatch(/^250/);
    c.close();
  });
});

describe('ingress: TLS floor and timeouts', () => {
  // OpenSSL 3 in Node refuses TLS 1.0/1.1 on its own, so a test of those could never
  // fail; smtp.tls.minVersion is shown to work by raising it to 1.3 and offering 1.2.
  // Skipped only on a developer machine without OpenSSL; under CI=true findProgram throws.
  it.skipIf(!openssl)('accepts a TLS 1.2 client by default (smtp.tls.minVersion TLSv1.2)', async () => {
    gw = await startTestGateway(NOWHERE);
    const r = await opensslStartTls(gw.port, '-tls1_2');
    expect(r.output).toMatch(/Protocol version: TLSv1\.2/);
    expect(r.code).toBe(0);
  });

  // Skipped only on a developer machine without OpenSSL; under CI=true findProgram throws.
  it.skipIf(!openssl)('with smtp.tls.minVersion TLSv1.3 refuses a TLS 1.2-only client and accepts TLS 1.3', async () => {
    gw = await startTestGateway({ ...NOWHERE, smtp: { tls: { minVersion: 'TLSv1.3' } } });
    const refused = await opensslStartTls(gw.port, '-tls1_2');
    expect(refused.code).not.toBe(0);
    expect(refused.output).not.toMatch(/Protocol version:/);
    expect(refused.output).toMatch(/alert protocol version|unsupported protocol|no protocols available|wrong version/i);
    const accepted = await opensslStartTls(gw.port, '-tls1_3');
    expect(accepted.output).toMatch(/Protocol version: TLSv1\.3/);
    expect(accepted.code).toBe(0);
  });

  it('closes an idle session after smtp.limits.commandTimeout with 421 4.4.2', async () => {
    const c = await session({ smtp: { limits: { commandTimeout: '400ms' } } });
    await c.command('EHLO client.test');
    const reply = await c.read(5000);
    expect(reply).toMatch(/^421 4\.4\.2 /);
    await new Promise((r) => setTimeout(r, 100));
    expect(c.closed).toBe(true);
  });
});
