import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { TestDns } from '../helpers/dns-server.js';
import { createTestCa } from '../helpers/pki.js';
import { csrfOf, linkIn, Visitor } from '../helpers/portal-visitor.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

describe('portal read receipts', () => {
  const s = scenario();
  const ca = createTestCa('Receipt Test CA');

  it('go to the sender over verified TLS (they say who opened what), never at a notice\'s level', async () => {
    const patients = await s.mx();
    const clinic = await s.mx({ tls: ca.issue(['mx.clinic.test']) });
    const dns = await new TestDns({ 'mx.clinic.test': { A: ['127.0.0.1'] } }).start();
    onTestFinished(() => dns.stop());
    const policy = join(mkdtempSync(join(tmpdir(), 'postern-receipt-')), 'policy.yaml');
    writeFileSync(policy, 'defaults: { methods: [portal], onNoMethod: defer }\nrules: []\n');
    const gw = await s.gateway({
      policy: { file: policy },
      portal: { readReceipts: true },
      delivery: {
        tls: { trust: [ca.caFile] },
        routes: {
          'home.test': { nexthop: `127.0.0.1:${patients.port}`, tls: 'none' },
          'clinic.test': { nexthop: `mx.clinic.test:${clinic.port}` },
        },
        dns: { servers: [dns.server] },
      },
    });
    expect((await sendMail(gw.port, { from: 'dr@clinic.test', to: ['pat@home.test'], raw: testMessage({ from: 'dr@clinic.test', subject: 'Results' }) })).ok).toBe(true);
    await patients.waitFor(1);
    const link = linkIn(patients.messages[0]!.raw.toString(), 'm');
    const v = new Visitor(`https://127.0.0.1:${gw.gateway.portalPort}`);
    const form = await v.get(link);
    const done = await v.post(link, { csrf: csrfOf(form.html), password: 'Amber-valley-window-19', confirm: 'Amber-valley-window-19' });
    await v.get(done.location as string);
    await clinic.waitFor(1);
    const receipt = clinic.messages[0]!;
    expect(receipt.secure).toBe(true);
    expect(receipt.raw.toString()).toMatch(/^Subject: Read: secure message to pat@home\.test/m);
    const sent = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'dr@clinic.test');
    expect(sent).toMatchObject({ rule: 'portal-receipt', tls: { level: 'verify', verified: true } });
  });

  it('a policy rule may ask for receipts and show the subject for its own recipients, whatever portal.* says', async () => {
    const patients = await s.mx();
    const clinic = await s.mx({ tls: ca.issue(['mx.clinic.test']) });
    const dns = await new TestDns({ 'mx.clinic.test': { A: ['127.0.0.1'] } }).start();
    onTestFinished(() => dns.stop());
    const policy = join(mkdtempSync(join(tmpdir(), 'postern-receipt-rule-')), 'policy.yaml');
    writeFileSync(
      policy,
      [
        'defaults: { methods: [portal], onNoMethod: defer }',
        'rules:',
        '  - id: tracked-results',
        '    match: { recipient: tracked@home.test }',
        '    action: { methods: [portal], portalReadReceipts: true, portalShowSubject: true }',
        '',
      ].join('\n'),
    );
    const gw = await s.gateway({
      policy: { file: policy },
      portal: { readReceipts: false, showSubject: false },
      delivery: {
        tls: { trust: [ca.caFile] },
        routes: { 'home.test': { nexthop: `127.0.0.1:${patients.port}`, tls: 'none' }, 'clinic.test': { nexthop: `mx.clinic.test:${clinic.port}` } },
        dns: { servers: [dns.server] },
      },
    });
    expect((await sendMail(gw.port, { from: 'dr@clinic.test', to: ['tracked@home.test', 'other@home.test'], raw: testMessage({ from: 'dr@clinic.test', subject: 'Appointment moved' }) })).ok).toBe(true);
    await patients.waitFor(2);
    const noticeTo = (rcpt: string) => patients.messages.find((m) => m.rcptTo.includes(rcpt))!.raw.toString();
    expect(noticeTo('tracked@home.test')).toMatch(/^Subject: Secure message: Appointment moved/m);
    expect(noticeTo('other@home.test')).not.toContain('Appointment moved');
    const open = async (rcpt: string) => {
      const link = linkIn(noticeTo(rcpt), 'm');
      const v = new Visitor(`https://127.0.0.1:${gw.gateway.portalPort}`);
      const form = await v.get(link);
      const done = await v.post(link, { csrf: csrfOf(form.html), password: 'Amber-valley-window-19', confirm: 'Amber-valley-window-19' });
      expect((await v.get(done.location as string)).status).toBe(200);
    };
    await open('other@home.test');
    await open('tracked@home.test');
    await clinic.waitFor(1);
    await new Promise((r) => setTimeout(r, 500));
    // One receipt: for the rule's recipient, none for the other.
    expect(clinic.messages.map((m) => /^Subject: (.*)$/m.exec(m.raw.toString())?.[1]?.trim())).toEqual(['Read: secure message to tracked@home.test']);
  });
});
