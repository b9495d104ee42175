import { simpleParser } from 'mailparser';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { closedPort } from '../helpers/closed-port.js';
import { createTestCa } from '../helpers/pki.js';

const s = scenario();
// Reports go to the sender over verified TLS (rule dsn): the sender's MX has a certificate the gateway trusts.
const senderCa = createTestCa('Sender MX CA');
const senderCert = senderCa.issue(['127.0.0.1']);
const trust = { trust: [senderCa.caFile] };
const mx = s.mx;
let gw: TestGateway | undefined;

function routes(dest: TestMx | number, sender?: TestMx): Record<string, unknown> {
  const port = typeof dest === 'number' ? dest : dest.port;
  return {
    'dest.test': { nexthop: `127.0.0.1:${port}`, tls: 'may' },
    ...(sender ? { 'client.test': { nexthop: `127.0.0.1:${sender.port}`, tls: 'may' } } : {}),
  };
}

describe('retries and bounces', () => {
  it('defers while the receiving MX is down, then delivers each message once when it is back', async () => {
    // Nothing listens on this port until the MX "comes back".
    const port = await closedPort();
    gw = await s.gateway({ delivery: { tls: trust, routes: routes(port) } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await sendMail(gw.port, { from: 'sender@client.test', to: [`p${i}@dest.test`], raw: testMessage({ subject: `retry ${i}` }) });
      expect(r.ok).toBe(true);
      ids.push(r.queueId as string);
    }
    for (const id of ids) {
      const d = await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === id);
      expect(d).toMatchObject({ dsn: '4.4.1', category: 'connection', attempt: 1 });
    }
    const back = await mx({ port });
    await back.waitFor(3, 20_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(back.messages.map((m) => m.rcptTo[0]).sort()).toEqual(['p0@dest.test', 'p1@dest.test', 'p2@dest.test']);
    for (const id of ids) {
      const sent = gw.events('delivery.sent').filter((l) => l.queueId === id);
      expect(sent).toHaveLength(1);
      expect(Number(sent[0]!.attempt)).toBeGreaterThanOrEqual(2);
    }
    expect(gw.gateway.queue.stats().depth).toBe(0);
  });

  it('bounces a 5xx recipient with an RFC 3464 report to the sender, and delivers the others', async () => {
    const dest = await mx({ rcptReply: (rcpt) => (rcpt.startsWith('nobody@') ? [550, '5.1.1 <nobody@dest.test>: Recipient address rejected: User unknown'] : undefined) });
    const senderMx = await mx({ tls: senderCert });
    gw = await s.gateway({ delivery: { tls: trust, routes: routes(dest, senderMx) } });
    const original = testMessage({ subject: 'Lab results', to: 'ok@dest.test, nobody@dest.test' });
    const r = await sendMail(gw.port, { from: 'sender@client.test', to: ['ok@dest.test', 'nobody@dest.test'], raw: original });
    expect(r.ok).toBe(true);
    await dest.waitFor(1);
    await senderMx.waitFor(1);
    expect(dest.messages[0]!.rcptTo).toEqual(['ok@dest.test']);

    const report = senderMx.messages[0]!;
    expect(report.mailFrom).toBe('');
    expect(report.rcptTo).toEqual(['sender@client.test']);
    const parsed = await simpleParser(report.raw);
    expect(parsed.headers.get('auto-submitted')).toBe('auto-replied');
    expect(String(parsed.headers.get('x-postern-loop'))).toBe('postern.test');
    const ct = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
    expect(ct.value).toBe('multipart/report');
    expect(ct.params['report-type']).toBe('delivery-status');
    const raw = report.raw.toString('utf8');
    const status = /Content-Type: message\/delivery-status\r\n\r\n([\s\S]*?)\r\n--/.exec(raw)?.[1] ?? '';
    expect(status).toMatch(/^Reporting-MTA: dns; postern\.test$/m);
    expect(status).toMatch(/^Final-Recipient: rfc822; nobody@dest\.test$/m);
    expect(status).toMatch(/^Action: failed$/m);
    expect(status).toMatch(/^Status: 5\.1\.1$/m);
    expect(status).toMatch(/^Diagnostic-Code: smtp; 550 5\.1\.1/m);
    expect(status).not.toContain('ok@dest.test'); // only the failed recipient is named
    expect(raw).toMatch(/Content-Type: text\/rfc822-headers\r\nContent-Transfer-Encoding: 7bit\r\n\r\n[\s\S]*Subject: Lab results/);

    const bounced = gw.events('delivery.bounced');
    expect(bounced).toHaveLength(1);
    expect(bounced[0]).toMatchObject({ to: 'nobody@dest.test', dsn: '5.1.1', category: 'recipient' });
    await new Promise((res) => setTimeout(res, 300));
    expect(gw.gateway.queue.stats().depth).toBe(0);
  });

  it('names no Remote-MTA in a report when no server answered (every connection refused), nor an IP address as one', async () => {
    const refused = await closedPort();
    const refusing = await mx({ rcptReply: () => [550, '5.1.1 User unknown'] });
    const senderMx = await mx({ tls: senderCert });
    gw = await s.gateway({
      delivery: {
        tls: trust,
        routes: { ...routes(refused, senderMx), 'ip.test': { nexthop: `127.0.0.1:${refusing.port}`, tls: 'may' } },
        retry: { initialDelay: '200ms', maxDelay: '400ms', lifetime: '1500ms' },
      },
    });
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['down@dest.test', 'nobody@ip.test'], raw: testMessage() })).ok).toBe(true);
    // One report for the 550 (first attempt), one for the refused host (lifetime).
    await senderMx.waitFor(2, 15_000);
    const statusParts = senderMx.messages.map((m) => /Content-Type: message\/delivery-status\r\n\r\n([\s\S]*?)\r\n--/.exec(m.raw.toString())?.[1] ?? '');
    const byRecipient = Object.fromEntries(statusParts.map((p) => [/^Final-Recipient: rfc822; (\S+)$/m.exec(p)?.[1], p]));
    expect(Object.keys(byRecipient).sort()).toEqual(['down@dest.test', 'nobody@ip.test']);
    expect(byRecipient['down@dest.test']).toMatch(/^Status: 5\.4\.7$/m);
    expect(byRecipient['nobody@ip.test']).toMatch(/^Status: 5\.1\.1$/m);
    // "Remote-MTA: dns; <name>" takes a host name (RFC 3464 §2.3.5); these next hops are 127.0.0.1.
    expect(statusParts.flatMap((p) => p.match(/^Remote-MTA:.*$/gm) ?? [])).toEqual([]);
  });

  it('never sends a report for a message from the null sender', async () => {
    const dest = await mx({ rcptReply: () => [550, '5.1.1 User unknown'] });
    const senderMx = await mx({ tls: senderCert });
    gw = await s.gateway({ delivery: { tls: trust, routes: routes(dest, senderMx) } });
    const r = await sendMail(gw.port, { from: '', to: ['nobody@dest.test'], raw: testMessage() });
    expect(r.ok).toBe(true);
    await gw.waitForLog((l) => l.event === 'dsn.suppressed');
    await new Promise((res) => setTimeout(res, 300));
    expect(senderMx.messages).toHaveLength(0);
    expect(gw.gateway.queue.stats().depth).toBe(0);
  });

  it('bounces with 5.4.7 when the retry lifetime runs out under temporary failures', async () => {
    const dest = await mx({ rcptReply: () => [451, '4.3.0 Try again later'] });
    const senderMx = await mx({ tls: senderCert });
    gw = await s.gateway({ delivery: { tls: trust, routes: routes(dest, senderMx), retry: { initialDelay: '200ms', maxDelay: '400ms', lifetime: '1500ms' } } });
    const r = await sendMail(gw.port, { from: 'sender@client.test', to: ['slow@dest.test'], raw: testMessage() });
    expect(r.ok).toBe(true);
    await senderMx.waitFor(1, 15_000);
    const deferred = gw.events('delivery.deferred').filter((l) => l.to === 'slow@dest.test');
    expect(deferred.length).toBeGreaterThanOrEqual(2);
    expect(deferred[0]).toMatchObject({ dsn: '4.3.0', category: 'temporary' });
    const raw = senderMx.messages[0]!.raw.toString();
    expect(raw).toMatch(/^Status: 5\.4\.7$/m);
    expect(raw).toMatch(/delivery time expired/);
  });
});
