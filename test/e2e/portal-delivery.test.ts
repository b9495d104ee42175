import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDns } from '../helpers/dns-server.js';
import { TestHttps } from '../helpers/https-server.js';
import type { TestMx } from '../helpers/mx-server.js';
import { createTestCa, selfSigned } from '../helpers/pki.js';
import { csrfOf, linkIn, Visitor } from '../helpers/portal-visitor.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

/** A Twilio-style SMS API on loopback that records what it is asked to send. */
async function fakeSmsProvider(): Promise<{ server: Server; url: string; requests: { path: string; auth: string; form: URLSearchParams }[]; refuse: boolean; code?: number | undefined }> {
  const requests: { path: string; auth: string; form: URLSearchParams }[] = [];
  // refuse: answer 400, with the Twilio error `code` when one is set.
  const provider = { server: undefined as unknown as Server, url: '', requests, refuse: false, code: undefined as number | undefined };
  provider.server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', auth: req.headers.authorization ?? '', form: new URLSearchParams(body) });
      // A refusal echoes the request, as some providers' error bodies do.
      res.writeHead(provider.refuse ? 400 : 201, { 'content-type': 'application/json' });
      res.end(JSON.stringify(provider.refuse ? { code: provider.code, message: `refused: ${body}` } : { sid: `SM${requests.length}` }));
    });
  });
  await new Promise<void>((r) => provider.server.listen(0, '127.0.0.1', () => r()));
  provider.url = `http://127.0.0.1:${(provider.server.address() as { port: number }).port}/2010-04-01`;
  return provider;
}

const insecure = new Agent({ connect: { rejectUnauthorized: false } });

describe('portal delivery paths', () => {
  const s = scenario();
  let sms: Awaited<ReturnType<typeof fakeSmsProvider>>;
  let plainMx: TestMx;
  let senderMx: TestMx;
  let selfSignedMx: TestMx;
  let stsMx: TestMx;
  let https: TestHttps;
  let dns: TestDns;
  let policyFile: string;
  const ca = createTestCa();

  beforeAll(async () => {
    sms = await fakeSmsProvider();
    plainMx = await s.mx();
    // Reports go to the sender over verified TLS (rule dsn).
    senderMx = await s.mx({ tls: ca.issue(['127.0.0.1']) });
    selfSignedMx = await s.mx({ tls: selfSigned('mx.selfsigned.test') });
    stsMx = await s.mx({ tls: ca.issue(['mx.ststesting.test', 'mx.stsenforce.test']) });
    https = await new TestHttps(ca.issue(['mta-sts.ststesting.test', 'mta-sts.stsenforce.test'])).start();
    // nostarttls.test goes by its MX (no route), so delivery.tls.default (verify) applies.
    dns = await new TestDns({ 'nostarttls.test': { MX: [{ exchange: 'mx.nostarttls.test', priority: 10 }] }, 'mx.nostarttls.test': { A: ['127.0.0.1'] }, 'mx.selfsigned.test': { A: ['127.0.0.1'] } }).start();
    for (const d of ['ststesting', 'stsenforce']) {
      dns.zone[`${d}.test`] = { MX: [{ exchange: `mx.${d}.test`, priority: 10 }] };
      dns.zone[`mx.${d}.test`] = { A: ['127.0.0.1'] };
      dns.zone[`_mta-sts.${d}.test`] = { TXT: ['v=STSv1; id=20261123;'] };
      dns.zone[`mta-sts.${d}.test`] = { A: ['127.0.0.1'] };
    }
    policyFile = join(mkdtempSync(join(tmpdir(), 'postern-portal-policy-')), 'policy.yaml');
    // ststesting.test: this organisation's policy demands MTA-STS in enforce mode for it.
    writeFileSync(policyFile, 'defaults: { methods: [tls, portal], tls: verify, onNoMethod: portal }\ndomains:\n  client.test: { methods: [tls], tls: may }\n  ststesting.test: { methods: [tls, portal], tls: mta-sts }\nrules: []\n');
  });
  afterAll(async () => {
    await new Promise<void>((r) => sms.server.close(() => r()));
    await https.stop();
    await dns.stop();
  });

  /** mxPort: where MX delivery goes (every MX of the test listens on 127.0.0.1, each on its own port). */
  async function gateway(mxPort = plainMx.port) {
    return s.gateway({
      policy: { file: policyFile },
      portal: { sms: { provider: { url: sms.url, accountSid: 'AC123', authToken: 'secret-token', from: '+15550001111' } } },
      delivery: {
        mxPort,
        dns: { servers: [dns.server] },
        tls: { trust: [ca.caFile] },
        mtaSts: { port: https.port, timeout: '2s' },
        routes: { 'client.test': { nexthop: `127.0.0.1:${senderMx.port}`, tls: 'none' }, 'selfsigned.test': { nexthop: `mx.selfsigned.test:${selfSignedMx.port}`, tls: 'verify' } },
      },
    });
  }

  /**
   * Sends a confidential message to `rcpt`; waits until it went to the portal instead
   * (moved there for `reason`); returns what reached `mx` meanwhile.
   */
  async function fallsBackToPortal(gw: Awaited<ReturnType<typeof gateway>>, rcpt: string, reason: string, mx: TestMx) {
    const before = mx.messages.length;
    await sendMail(gw.port, { from: 'sender@client.test', to: [rcpt], raw: testMessage({ to: rcpt, subject: 'Confidential results', body: 'Results: all clear.' }) });
    expect(await gw.waitForLog((l) => l.event === 'portal.fallback' && l.to === rcpt)).toMatchObject({ reason });
    const sent = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === rcpt && l.method === 'portal');
    expect(String(sent.response)).toMatch(/moved to the portal/);
    expect(gw.events('portal.notice').filter((l) => l.to === rcpt)).toHaveLength(1);
    return () => mx.messages.slice(before);
  }

  /** Nothing of the content reached the MX: at most the notice, with its link. */
  function noPlaintext(arrived: { raw: Buffer }[]) {
    for (const m of arrived) {
      const text = m.raw.toString();
      expect(text).toMatch(/^Subject: Secure message from /m);
      expect(text).not.toContain('Results: all clear.');
      expect(text).not.toContain('Confidential results');
    }
  }

  it('Secure Text to 15551234567@secure.text: one SMS with the link; the password set through it logs in again through the pre-filled form, a reset is texted, and mail to +15551234567 reaches the same account', async () => {
    const gw = await gateway();
    const r = await sendMail(gw.port, { from: 'sender@client.test', to: ['15551234567@secure.text'], raw: testMessage({ subject: 'Your appointment' }) });
    expect(r.ok).toBe(true);
    const sent = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === '15551234567@secure.text');
    expect(sent).toMatchObject({ method: 'portal', category: 'portal' });
    expect(sms.requests).toHaveLength(1);
    const req = sms.requests[0]!;
    expect(req.path).toBe('/2010-04-01/Accounts/AC123/Messages.json');
    expect(req.auth).toBe(`Basic ${Buffer.from('AC123:secret-token').toString('base64')}`);
    expect(req.form.get('To')).toBe('+15551234567');
    expect(req.form.get('From')).toBe('+15550001111');
    const body = req.form.get('Body') ?? '';
    expect(body).not.toContain('Your appointment');
    const link = /https:\/\/postern\.test:\d+\/m\/[A-Za-z0-9_-]{43}/.exec(body)?.[0] as string;
    expect(link).toBeTruthy();
    const page = await fetch(link.replace('postern.test', '127.0.0.1'), { dispatcher: insecure });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Set your password');
    expect(html).toContain('+15551234567@secure.text');
    expect(JSON.stringify(gw.logs)).not.toContain('secret-token');

    // The password is set through the link; the visitor is on the message.
    const base = `https://127.0.0.1:${gw.gateway.portalPort}`;
    const path = new URL(link).pathname;
    const first = new Visitor(base);
    const form = await first.get(path);
    const set = await first.post(path, { csrf: csrfOf(form.html), password: 'Quiet-orchard-window-58', confirm: 'Quiet-orchard-window-58' });
    expect(set.status).toBe(303);
    const message = set.location as string;
    expect((await first.get(message)).html).toContain('Your appointment');

    // Later, on another device: the link asks to log in, the form holds the identity
    // (+15551234567@secure.text), and sending it as it is logs in.
    const later = new Visitor(base);
    const login = await later.get(path);
    expect(login.html).toContain('Log in to read your secure messages');
    const fields = Object.fromEntries([...login.html.matchAll(/<input [^>]*name="(csrf|next|identity)"[^>]*value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    expect(fields).toMatchObject({ identity: '+15551234567@secure.text', next: message });
    const again = await later.post('/login', { ...fields, password: 'Quiet-orchard-window-58' } as Record<string, string>);
    expect(again.status).toBe(303);
    expect(again.location).toBe(message);
    expect((await later.get(message)).html).toContain('Your appointment');

    // A reset asked for as the issue writes the number is texted to it (the second SMS), and its link works.
    const resetForm = await later.get('/reset');
    expect((await later.post('/reset', { csrf: csrfOf(resetForm.html), identity: '15551234567' })).html).toContain('a link to set a new password is on its way');
    expect(await gw.waitForLog((l) => l.event === 'portal.reset')).toMatchObject({ level: 'info', identity: '+15551234567@secure.text', via: 'sms', sms: 'SM2' });
    expect(sms.requests).toHaveLength(2);
    expect(sms.requests[1]!.form.get('To')).toBe('+15551234567');
    const resetPath = /https:\/\/postern\.test:\d+(\/r\/[A-Za-z0-9_-]{43})/.exec(sms.requests[1]!.form.get('Body') ?? '')?.[1] as string;
    expect((await new Visitor(base).get(resetPath)).html).toContain('Set your password');

    // Mail to the number in E.164 is the same person: texted, and in the same inbox.
    const r2 = await sendMail(gw.port, { from: 'sender@client.test', to: ['+15551234567@secure.text'], raw: testMessage({ subject: 'Your prescription' }) });
    expect(r2.ok).toBe(true);
    expect(await gw.waitForLog((l) => l.to === '+15551234567@secure.text' && ['delivery.sent', 'delivery.deferred', 'delivery.bounced'].includes(String(l.event)))).toMatchObject({ event: 'delivery.sent', method: 'portal' });
    expect(sms.requests).toHaveLength(3);
    expect(sms.requests[2]!.form.get('To')).toBe('+15551234567');
    expect((await later.get('/inbox')).html).toContain('Your prescription');
  });

  /** A message to a Secure Text number, its SMS link followed and a password set: the visitor is logged in on the message. */
  async function secureTextRecipient(gw: Awaited<ReturnType<typeof gateway>>, rcpt: string, message: { subject: string; body: string }) {
    const before = sms.requests.length;
    await sendMail(gw.port, { from: 'sender@client.test', to: [rcpt], raw: testMessage(message) });
    await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === rcpt);
    const text = sms.requests[before]!.form.get('Body') ?? '';
    const path = /https:\/\/postern\.test:\d+(\/m\/[A-Za-z0-9_-]{43})/.exec(text)?.[1] as string;
    expect(path).toBeTruthy();
    const visitor = new Visitor(`https://127.0.0.1:${gw.gateway.portalPort}`);
    const form = await visitor.get(path);
    expect(form.html).toContain('Set your password');
    const set = await visitor.post(path, { csrf: csrfOf(form.html), password: 'Quiet-orchard-window-58', confirm: 'Quiet-orchard-window-58' });
    expect(set.status).toBe(303);
    expect(set.location).toMatch(/^\/message\/[A-Za-z0-9_-]{16}$/);
    return { visitor, message: set.location as string };
  }

  it('Secure Text end to end: following the SMS link, setting the password and reading the message', async () => {
    const gw = await gateway();
    const { visitor, message } = await secureTextRecipient(gw, '12025550188@secure.text', { subject: 'Your appointment', body: 'See you on Tuesday at 10:30.' });
    const page = await visitor.get(message);
    expect(page.status).toBe(200);
    expect(page.html).toContain('Your appointment');
    expect((await visitor.get(`${message}/content`)).html).toContain('See you on Tuesday at 10:30.');
    expect((await visitor.get('/inbox')).html).toContain('Your appointment');
  });

  it('a password reset is logged as sent only when it was: texted when the provider takes it, an error when it refuses', async () => {
    const gw = await gateway();
    await secureTextRecipient(gw, '12025550199@secure.text', { subject: 'Results', body: 'All clear.' });
    const visitor = new Visitor(`https://127.0.0.1:${gw.gateway.portalPort}`);
    const form = await visitor.get('/reset');
    const ask = () => visitor.post('/reset', { csrf: csrfOf(form.html), identity: '12025550199@secure.text' });
    expect((await ask()).html).toContain('a link to set a new password is on its way');
    const sent = await gw.waitForLog((l) => l.event === 'portal.reset' && l.level === 'info');
    expect(sent).toMatchObject({ identity: '+12025550199@secure.text', via: 'sms', sms: expect.stringMatching(/^SM\d+$/) });
    expect(sms.requests.at(-1)!.form.get('Body')).toMatch(/reset your password: https:\/\/postern\.test:\d+\/r\//);
    sms.refuse = true;
    try {
      // The visitor's answer is the same (no account enumeration); the log says what happened.
      expect((await ask()).html).toContain('a link to set a new password is on its way');
      const failed = await gw.waitForLog((l) => l.event === 'portal.reset' && l.level === 'error');
      expect(failed).toMatchObject({ identity: '+12025550199@secure.text', err: 'SMS provider refused the message: HTTP 400', msg: 'could not send the reset link' });
      expect(gw.events('portal.reset').filter((l) => l.msg === 'password reset link sent')).toHaveLength(1);
    } finally {
      sms.refuse = false;
    }
  });

  it('Secure Text: an invalid phone number bounces with a clear reason', async () => {
    const gw = await gateway();
    const before = senderMx.messages.length;
    await sendMail(gw.port, { from: 'sender@client.test', to: ['0123@secure.text'], raw: testMessage() });
    const bounced = await gw.waitForLog((l) => l.event === 'delivery.bounced' && l.to === '0123@secure.text');
    expect(bounced).toMatchObject({ dsn: '5.1.3' });
    expect(String(bounced.response)).toMatch(/not a valid phone number/);
    await senderMx.waitFor(before + 1);
    expect(senderMx.messages.at(-1)!.raw.toString()).toMatch(/^Status: 5\.1\.3$/m);
  });

  it('Secure Text: a number the SMS provider refuses as invalid (HTTP 400, error 21211) bounces at once with a 5.1.3 report in our words, never the provider\'s', async () => {
    const gw = await gateway();
    const before = senderMx.messages.length;
    sms.refuse = true;
    sms.code = 21211;
    try {
      await sendMail(gw.port, { from: 'sender@client.test', to: ['12025550123@secure.text'], raw: testMessage({ subject: 'Your appointment' }) });
      const settled = await gw.waitForLog((l) => l.to === '12025550123@secure.text' && ['delivery.sent', 'delivery.deferred', 'delivery.bounced'].includes(String(l.event)));
      expect(settled).toMatchObject({ event: 'delivery.bounced', dsn: '5.1.3' });
      expect(settled.response).toBe('the SMS provider refused +12025550123 for Secure Text: not a valid phone number (provider error 21211)');
    } finally {
      sms.refuse = false;
      sms.code = undefined;
    }
    expect(sms.requests.at(-1)!.form.get('To')).toBe('+12025550123');
    await senderMx.waitFor(before + 1);
    const dsn = senderMx.messages.at(-1)!.raw.toString();
    expect(dsn).toMatch(/^Status: 5\.1\.3$/m);
    // The reason, in the text for people and the Diagnostic-Code (both wrapped at 76 columns).
    expect(dsn.replace(/\s+/g, ' ').match(/<12025550123@secure\.text>: the SMS provider refused \+12025550123 for Secure Text: not a valid phone number \(provider error 21211\)/g)).toHaveLength(1);
    expect(dsn.replace(/\s+/g, ' ')).toContain('Diagnostic-Code: x-postern; the SMS provider refused +12025550123 for Secure Text: not a valid phone number (provider error 21211)');
    // The provider's answer echoed the SMS, link and all: none of it is in the report.
    expect(dsn).not.toContain('refused: ');
    expect(dsn).not.toMatch(/\/m\/[A-Za-z0-9_-]{43}/);
  });

  it('TLS fallback under the default verify level: an MX without STARTTLS gets the portal notice, and nothing else in clear', async () => {
    const gw = await gateway();
    expect(gw.config.delivery.tls.default).toBe('verify');
    const before = plainMx.messages.length;
    await sendMail(gw.port, { from: 'sender@client.test', to: ['patient@nostarttls.test'], raw: testMessage({ subject: 'Confidential results', body: 'Results: all clear.' }) });
    const moved = await gw.waitForLog((l) => l.event === 'portal.fallback' && l.to === 'patient@nostarttls.test');
    expect(moved).toMatchObject({ reason: 'tls:starttls-not-supported' });
    const sent = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'patient@nostarttls.test' && l.method === 'portal');
    expect(String(sent.response)).toMatch(/TLS .*failed \(starttls-not-supported\): moved to the portal/);
    await plainMx.waitFor(before + 1);
    // The notice went at its own decision's level (may), and the log says why.
    const notice = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'patient@nostarttls.test' && l.rule === 'portal-notice');
    expect(notice).toMatchObject({ tls: { level: 'may' } });
    const relaxed = await gw.waitForLog((l) => l.event === 'tls.notice-level' && l.domain === 'nostarttls.test');
    expect(relaxed).toMatchObject({ level: 'info', tlsLevel: 'may', routeTls: 'verify' });
    expect(String(relaxed.reason)).toMatch(/link, never content/);
    const arrived = plainMx.messages.slice(before);
    expect(arrived).toHaveLength(1);
    expect(arrived[0]!.secure).toBe(false);
    const text = arrived.map((m) => m.raw.toString()).join();
    expect(text).toMatch(/^Subject: Secure message from /m);
    expect(linkIn(text, 'm')).toBeTruthy();
    expect(text).not.toContain('Results: all clear.');
    expect(text).not.toContain('Confidential results');
    // Nothing else reaches that MX later: the original stays in the portal.
    expect(gw.events('delivery.sent').filter((l) => l.to === 'patient@nostarttls.test' && l.method === 'tls' && l.rule !== 'portal-notice')).toEqual([]);
  });

  it('TLS fallback: an MX whose certificate is not trusted (self-signed, under verify) gets the portal notice, never the content', async () => {
    const gw = await gateway();
    const arrived = await fallsBackToPortal(gw, 'patient@selfsigned.test', 'tls:certificate-not-trusted', selfSignedMx);
    await selfSignedMx.waitFor(1);
    // The notice went with STARTTLS at its own level (may): encrypted, not verified; it holds only the link.
    const notice = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'patient@selfsigned.test' && l.rule === 'portal-notice');
    expect(notice).toMatchObject({ tls: { level: 'may' } });
    expect(arrived()).toHaveLength(1);
    expect(arrived()[0]!.secure).toBe(true);
    expect(linkIn(arrived()[0]!.raw.toString(), 'm')).toBeTruthy();
    noPlaintext(arrived());
  });

  it('TLS fallback: a domain that does not give the MTA-STS enforcement the policy demands gets the portal notice, never the content', async () => {
    // ststesting.test publishes its policy in testing mode only; this organisation demands enforce (tls: mta-sts).
    https.routes.set('/.well-known/mta-sts.txt', { body: 'version: STSv1\r\nmode: testing\r\nmx: mx.ststesting.test\r\nmax_age: 86400\r\n' });
    const gw = await gateway(stsMx.port);
    const arrived = await fallsBackToPortal(gw, 'patient@ststesting.test', 'tls:no-mta-sts-policy', stsMx);
    const notice = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'patient@ststesting.test' && l.rule === 'portal-notice');
    expect(notice).toMatchObject({ tls: { policy: 'mta-sts-testing' } });
    expect(arrived()).toHaveLength(1);
    expect(linkIn(arrived()[0]!.raw.toString(), 'm')).toBeTruthy();
    noPlaintext(arrived());
  });

  it('TLS fallback: under the domain\'s own MTA-STS enforce policy that its MX fails, the message goes to the portal; the notice is held too (RFC 8461 binds it) and nothing reaches the MX', async () => {
    https.routes.set('/.well-known/mta-sts.txt', { body: 'version: STSv1\r\nmode: enforce\r\nmx: mx.other-provider.test\r\nmax_age: 86400\r\n' });
    const gw = await gateway(stsMx.port);
    const arrived = await fallsBackToPortal(gw, 'patient@stsenforce.test', 'tls:validation-failure', stsMx);
    const held = await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.to === 'patient@stsenforce.test' && l.rule === 'portal-notice');
    expect(held).toMatchObject({ category: 'tls:validation-failure', tls: { policy: 'mta-sts-enforce' } });
    await new Promise((r) => setTimeout(r, 300));
    expect(arrived()).toEqual([]);
  });
});
