import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey } from 'openpgp';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sentProtected } from '../../src/deliver/bounce.js';
import { withholdTopicFields, WITHHELD_FIELD_VALUE } from '../../src/deliver/dsn.js';
import { importKeys } from '../../src/keys/import.js';
import { KeyStore } from '../../src/keys/store.js';
import type { DeliveryState } from '../../src/types.js';
import { TestDns } from '../helpers/dns-server.js';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

const POLICY = `defaults: { methods: [pgp, tls], tls: may, onNoMethod: defer }
rules:
  - id: secure-tag
    match: { subjectTag: true }
    action: { methods: [pgp, portal], onNoMethod: portal }
`;

describe('the bounce report of a message sent protected', () => {
  const s = scenario({ checkArchive: false });
  const ca = createTestCa('DSN Test CA');

  /** dest.test refuses every recipient; the sender's MX (mx.client.test) has a certificate the gateway trusts, or no TLS at all. */
  async function setup(o: { senderTls: boolean; protectSubject?: boolean; lifetime?: string }): Promise<{ gw: TestGateway; senderMx: TestMx }> {
    const refusing = await s.mx({ rcptReply: () => [550, '5.1.1 no such user'] });
    const senderMx = await s.mx(o.senderTls ? { tls: ca.issue(['mx.client.test']) } : {});
    const dns = await new TestDns({ 'mx.client.test': { A: ['127.0.0.1'] } }).start();
    onTestFinished(() => dns.stop());
    const policy = join(mkdtempSync(join(tmpdir(), 'postern-dsn-')), 'policy.yaml');
    writeFileSync(policy, POLICY);
    const gw = await s.gateway({
      policy: { file: policy },
      keys: { discovery: ['store'] },
      ...(o.protectSubject ? { protect: { pgp: { protectSubject: true } } } : {}),
      delivery: {
        tls: { trust: [ca.caFile] },
        routes: { 'dest.test': { nexthop: `127.0.0.1:${refusing.port}`, tls: 'may' }, 'client.test': { nexthop: `mx.client.test:${senderMx.port}`, tls: 'may' } },
        dns: { servers: [dns.server] },
        ...(o.lifetime ? { retry: { initialDelay: '100ms', maxDelay: '200ms', lifetime: o.lifetime } } : {}),
      },
    });
    const key = (await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'dr@dest.test' }], format: 'armored' } as Parameters<typeof generateKey>[0])) as unknown as { publicKey: string };
    await importKeys(new KeyStore(join(gw.dataDir, 'keys')), key.publicKey, {});
    return { gw, senderMx };
  }

  async function bounceOf(gw: TestGateway, senderMx: TestMx, subject: string): Promise<{ report: string; original: string }> {
    const raw = testMessage({ to: 'dr@dest.test', subject, extraHeaders: ['Keywords: oncology', 'Thread-Topic: Jane Roe biopsy', 'Comments: MRN 7734912,', ' second line of the comment'] });
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['dr@dest.test'], raw })).ok).toBe(true);
    await senderMx.waitFor(1);
    const report = senderMx.messages[0]!;
    expect(report.secure).toBe(true);
    const sent = await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'sender@client.test');
    expect(sent).toMatchObject({ rule: 'dsn-protected', tls: { level: 'verify', verified: true } });
    return { report: report.raw.toString('latin1'), original: raw.toString('latin1') };
  }

  function expectWithheld(report: string, original: string) {
    const headers = /Content-Type: text\/rfc822-headers\r\n[^\r\n]*\r\n\r\n([\s\S]*?)\r\n--/.exec(report)?.[1] ?? '';
    expect(headers).toContain(`Subject: ${WITHHELD_FIELD_VALUE}`);
    expect(headers).toContain(`Keywords: ${WITHHELD_FIELD_VALUE}`);
    expect(headers).toContain(`Thread-Topic: ${WITHHELD_FIELD_VALUE}`);
    expect(headers).toContain(`Comments: ${WITHHELD_FIELD_VALUE}`);
    for (const secret of ['Jane Roe', '7734912', 'oncology', 'second line of the comment']) expect(report).not.toContain(secret);
    // What lets the sender match the report to the message stays.
    expect(headers).toContain(/^Message-ID: .*$/m.exec(original)![0]);
    expect(headers).toMatch(/^From: sender@client\.test\r?$/m);
    expect(headers).toMatch(/^To: dr@dest\.test\r?$/m);
    expect(headers).toMatch(/^Date: Mon, 23 Nov 2026/m);
  }

  it('withholds the subject of a [secure] message, and goes to the sender over verified TLS', async () => {
    const { gw, senderMx } = await setup({ senderTls: true });
    const { report, original } = await bounceOf(gw, senderMx, '[secure] HIV test positive for Jane Roe, MRN 7734912');
    expect(gw.logs.find((l) => l.event === 'policy.decision' && l.to === 'dr@dest.test')).toMatchObject({ rule: 'secure-tag', method: 'pgp' });
    expectWithheld(report, original);
    expect(report).not.toMatch(/^Subject: \[secure\]/m);
  });

  it('withholds the subject protect.pgp.protectSubject hid inside the PGP message', async () => {
    const { gw, senderMx } = await setup({ senderTls: true, protectSubject: true });
    const { report, original } = await bounceOf(gw, senderMx, 'Biopsy result for Jane Roe');
    expect(gw.logs.find((l) => l.event === 'policy.decision' && l.to === 'dr@dest.test')).toMatchObject({ rule: 'default', method: 'pgp' });
    expectWithheld(report, original);
  });

  it('is never sent in clear: deferred while the sender\'s MX has no valid TLS, dropped when its lifetime ends', async () => {
    const { gw, senderMx } = await setup({ senderTls: false, lifetime: '1s' });
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['dr@dest.test'], raw: testMessage({ to: 'dr@dest.test', subject: '[secure] Jane Roe' }) })).ok).toBe(true);
    const queued = await gw.waitForLog((l) => l.event === 'dsn.queued');
    const deferred = await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === queued.dsnQueueId);
    expect(deferred).toMatchObject({ rule: 'dsn-protected', dsn: '4.7.5', category: 'tls:starttls-not-supported' });
    const decision = gw.logs.find((l) => l.event === 'policy.decision' && l.queueId === queued.dsnQueueId);
    expect(decision === undefined || decision.tls === 'verify').toBe(true);
    await gw.waitForLog((l) => l.event === 'dsn.suppressed' && l.queueId === queued.dsnQueueId);
    expect(senderMx.messages).toHaveLength(0);
  });

  // A bounce of ordinary mail must still reach a sender whose server has no TLS (an
  // internal Exchange, say): it is decided by the policy (here tls: may), subject kept.
  it('of an unprotected message goes by the policy, subject kept, to a sender MX without TLS', async () => {
    const { gw, senderMx } = await setup({ senderTls: false });
    // No key for this recipient: the policy's pgp is impossible, so tls.
    expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['nokey@dest.test'], raw: testMessage({ to: 'nokey@dest.test', subject: 'Lunch on Friday' }) })).ok).toBe(true);
    await senderMx.waitFor(1);
    const report = senderMx.messages[0]!.raw.toString('latin1');
    expect(report).toMatch(/^Subject: Lunch on Friday\r?$/m);
    expect(await gw.waitForLog((l) => l.event === 'dsn.queued')).toMatchObject({ protected: false });
    expect(await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'sender@client.test')).toMatchObject({ rule: 'default' });
  });
});

describe('withholdTopicFields', () => {
  it('replaces Subject, Thread-Topic, Keywords and Comments with their continuation lines, and nothing else', () => {
    const block = Buffer.from('Received: from a\r\n\tby b\r\nsubject: =?utf-8?q?Jane_Roe?=\r\n =?utf-8?q?_biopsy?=\r\nMessage-ID: <m1@x>\r\nKEYWORDS: hiv\r\nX-Subject-Line: kept\r\nTo: dr@dest.test\r\n');
    expect(withholdTopicFields(block).toString()).toBe(
      `Received: from a\r\n\tby b\r\nsubject: ${WITHHELD_FIELD_VALUE}\r\nMessage-ID: <m1@x>\r\nKEYWORDS: ${WITHHELD_FIELD_VALUE}\r\nX-Subject-Line: kept\r\nTo: dr@dest.test\r\n`,
    );
  });
});

describe('sentProtected', () => {
  const plain: DeliveryState = { recipients: [{ rcpt: 'a@b.test', status: 'bounced', attempts: 1, nextAttemptAt: 0, decision: { rcpt: 'a@b.test', ruleId: 'default', reasons: [], candidates: ['tls'], tls: 'may', onNoMethod: 'defer', method: 'tls' } }], inspection: { score: 0, categories: [], hits: [], subjectTagged: false } };
  it('is false only for a message inspected clean and sent over TLS', () => {
    expect(sentProtected(plain)).toBe(false);
    expect(sentProtected({ ...plain, inspection: undefined })).toBe(true);
    expect(sentProtected({ ...plain, inspection: { ...plain.inspection!, subjectTagged: true } })).toBe(true);
    expect(sentProtected({ ...plain, inspection: { ...plain.inspection!, score: 3, hits: [{ detector: 'ssn', category: 'phi', count: 1, score: 3 }] } })).toBe(true);
    expect(sentProtected({ ...plain, inspection: { ...plain.inspection!, unscanned: 'too large' } })).toBe(true);
    expect(sentProtected({ ...plain, recipients: [...plain.recipients, { ...plain.recipients[0]!, rcpt: 'c@d.test', decision: { ...plain.recipients[0]!.decision!, method: 'portal' } }] })).toBe(true);
  });
});
