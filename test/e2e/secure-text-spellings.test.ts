import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keylessAvailability } from '../../src/policy/availability.js';
import { validateConfig } from '../../src/config/load.js';
import { portalReach } from '../../src/portal/reach.js';
import { testConfigInput } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { scenario } from '../helpers/scenario.js';
import { RawSmtp, sendMail, testMessage } from '../helpers/smtp-client.js';

/** A Twilio-style SMS API on loopback that records the numbers it is asked to text. */
async function smsProvider(): Promise<{ server: Server; url: string; to: string[] }> {
  const to: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      to.push(new URLSearchParams(body).get('To') ?? '');
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ sid: `SM${to.length}` }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/2010-04-01`, to };
}

/** Other ways to write portal.sms.domain (secure.text) that name the same domain. */
const SPELLINGS = [
  ['full-width letters', '15551230004@ｓｅｃｕｒｅ.text', '+15551230004'],
  ['a soft hyphen', '15551230005@sec\u00ADure.text', '+15551230005'],
  ['capitals', '15551230006@SECURE.Text', '+15551230006'],
] as const;

/**
 * A Secure Text recipient (<digits>@portal.sms.domain) has no mail server: the portal and an
 * SMS are the only way to them. The policy, the router and MTA-STS compare domains in one
 * normal form (full-width letters, soft hyphens, case, IDN): so must the test for Secure
 * Text, or another spelling of the domain makes an ordinary recipient mailed over SMTP.
 */
describe('Secure Text recipients written in another form of portal.sms.domain', () => {
  const s = scenario();
  let sms: Awaited<ReturnType<typeof smsProvider>>;
  let mx: TestMx;
  let policyFile: string;

  beforeAll(async () => {
    sms = await smsProvider();
    mx = await s.mx();
    policyFile = join(mkdtempSync(join(tmpdir(), 'postern-sms-spelling-')), 'policy.yaml');
    // TLS first: only the Secure Text test keeps these recipients from it.
    writeFileSync(policyFile, 'defaults: { methods: [tls, portal], tls: may, onNoMethod: portal }\nrules: []\n');
  });
  afterAll(async () => {
    await new Promise<void>((r) => sms.server.close(() => r()));
  });

  const routes = () => ({ '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } });

  for (const [what, rcpt, phone] of SPELLINGS) {
    it(`${what} (${JSON.stringify(rcpt)}): the portal with an SMS notice, nothing over SMTP`, async () => {
      const gw = await s.gateway({ policy: { file: policyFile }, portal: { sms: { provider: { url: sms.url, accountSid: 'AC1', authToken: 'tok', from: '+15550001111' } } }, delivery: { routes: routes() } });
      const sent = await sendMail(gw.port, { from: 'dr@client.test', to: [rcpt], raw: testMessage({ from: 'dr@client.test', subject: 'Appointment', body: 'Your appointment is at 10.' }) });
      expect(sent.ok).toBe(true);
      const decision = await gw.waitForLog((l) => l.event === 'policy.decision' && l.queueId === sent.queueId);
      expect(decision).toMatchObject({ method: 'portal' });
      const done = await gw.waitForLog((l) => l.queueId === sent.queueId && ['delivery.sent', 'delivery.deferred', 'delivery.bounced'].includes(String(l.event)));
      expect(done).toMatchObject({ event: 'delivery.sent', method: 'portal' });
      expect(sms.to).toContain(phone);
      const local = rcpt.slice(0, rcpt.indexOf('@'));
      expect(mx.commands.filter((c) => c.command === 'RCPT TO' && c.address.startsWith(`${local}@`)).map((c) => c.address)).toEqual([]);
    });
  }

  it('with the portal off, a Secure Text recipient in any spelling is refused at RCPT (550 5.1.2, saying why); others are taken', async () => {
    const gw = await s.gateway({ policy: { file: policyFile }, portal: { enabled: false }, delivery: { routes: routes() } });
    const smtp = await RawSmtp.connect(gw.port);
    // In UTF-8, as SMTPUTF8 says (RawSmtp.command writes Latin-1).
    const say = (line: string) => {
      smtp.write(Buffer.from(`${line}\r\n`, 'utf8'));
      return smtp.read();
    };
    try {
      await say('EHLO client.test');
      expect(await say('MAIL FROM:<dr@client.test> SMTPUTF8')).toMatch(/^250/);
      for (const rcpt of ['15551230007@secure.text', ...SPELLINGS.map((x) => x[1])]) {
        const answer = await say(`RCPT TO:<${rcpt}>`);
        expect(answer, rcpt).toMatch(/^550 5\.1\.2 .*Secure Text recipients \(@secure\.text\) are reached through the portal, which is off \(portal\.enabled: false\)/);
      }
      expect(await say('RCPT TO:<p@hospital.test>')).toMatch(/^250/);
    } finally {
      smtp.close();
    }
  });

  it('with the portal off, mail already queued for a Secure Text recipient is held, never sent over TLS', () => {
    const reach = portalReach(validateConfig(testConfigInput(mkdtempSync(join(tmpdir(), 'postern-sms-off-')), { portal: { enabled: false } })));
    const available = keylessAvailability(reach);
    for (const rcpt of ['15551230007@secure.text', ...SPELLINGS.map((x) => x[1])]) {
      expect([reach.isSms(rcpt), available('tls', rcpt), available('portal', rcpt)], rcpt).toEqual([true, false, false]);
    }
    expect([available('tls', 'p@hospital.test'), available('portal', 'p@hospital.test')]).toEqual([true, false]);
  });
});
