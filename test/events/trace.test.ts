import { afterEach, describe, expect, it } from 'vitest';
import { startAuditTrail, type AuditTrail } from '../../src/events/audit.js';
import { formatTrace } from '../../src/events/trace-format.js';
import { parseSince, traceMessages } from '../../src/events/trace.js';
import { capturedLogger, tempDir } from './helpers.js';

/**
 * Portal events are recorded by whichever worker served the HTTPS request, so they sit
 * in another shard's chain and name the portal copy or the reader, not the message.
 */
describe('trace: portal events and related messages', () => {
  const open: AuditTrail[] = [];
  afterEach(async () => {
    for (const t of open.splice(0)) await t.close();
  });

  async function shard(dataDir: string, n: number) {
    const cap = capturedLogger();
    const t = await startAuditTrail({ dataDir, shard: n, bus: cap.bus, logger: cap.logger, flushInterval: 5 });
    open.push(t);
    return { t, log: cap.logger };
  }

  it('links the portal copy, reads, replies, login failures and locks of its reader, and the bounce report', async () => {
    const dataDir = tempDir();
    const w0 = await shard(dataDir, 0);
    const w1 = await shard(dataDir, 1);
    const Q = '01JTESTQUEUEID0001';
    w0.log.info({ event: 'queue.accepted', queueId: Q, sessionId: 's1', ip: '10.1.2.3', from: 'dr@clinic.test', nrcpt: 2, size: 900 }, 'queued');
    w0.log.info({ event: 'inspect.done', queueId: Q, messageId: '<m1@clinic.test>', parts: 2, attachments: 1, detectors: [{ detector: 'ssn', count: 2 }], score: 20, subjectTagged: false }, 'inspected');
    w0.log.info({ event: 'policy.decision', queueId: Q, to: 'pat@home.test', rule: 'phi-detected', method: 'portal', candidates: ['smime', 'pgp', 'portal'], tls: 'verify', onNoMethod: 'portal', reasons: ['PHI found'] }, 'decision');
    w0.log.info({ event: 'policy.decision', queueId: Q, to: 'gone@home.test', rule: 'phi-detected', method: 'tls', candidates: ['tls'], tls: 'verify', onNoMethod: 'bounce', reasons: ['PHI found'] }, 'decision');
    w0.log.info({ event: 'portal.notice', queueId: Q, to: 'pat@home.test', via: 'mail', portalId: 'P-77', noticeQueueId: '01JNOTICE000000001' }, 'notice');
    w0.log.info({ event: 'delivery.sent', queueId: Q, to: 'pat@home.test', method: 'portal', rule: 'phi-detected', status: 'sent', category: 'portal', attempt: 1, dsn: '2.0.0', response: 'stored in the portal' }, 'delivered');
    w0.log.warn({ event: 'delivery.bounced', queueId: Q, to: 'gone@home.test', status: 'bounced', dsn: '5.1.1', attempt: 1, relay: 'mx.home.test[192.0.2.1]:25', response: '550 5.1.1 no such user' }, 'bounced');
    w0.log.info({ event: 'dsn.queued', queueId: Q, dsnQueueId: '01JDSN000000000001', to: 'dr@clinic.test', failed: ['gone@home.test'] }, 'dsn');
    await w0.t.flush();
    // Later, in the other worker: the reader fails a login, gets locked, then reads and replies.
    w1.log.warn({ event: 'portal.login-failed', identity: 'pat@home.test', failuresLastHour: 5 }, 'failed');
    w1.log.warn({ event: 'portal.locked', identity: 'pat@home.test', until: '2026-01-01T00:15:00.000Z' }, 'locked');
    w1.log.warn({ event: 'portal.login-failed', identity: 'stranger@home.test', failuresLastHour: 1 }, 'someone else');
    w1.log.info({ event: 'portal.view', portalId: 'P-77', queueId: Q, identity: 'pat@home.test' }, 'viewed');
    w1.log.info({ event: 'portal.reply', portalId: 'P-77', identity: 'pat@home.test', replyQueueId: '01JREPLY0000000001', attachments: 0, to: 1 }, 'reply');
    w1.log.info({ event: 'portal.revoked', portalId: 'P-77', by: 'ops' }, 'revoked');
    w1.log.info({ event: 'api.call', actor: 'ops-key', role: 'operator', method: 'POST', path: `/api/v1/queue/${Q}/retry`, queueId: Q, status: 200, ip: '10.0.0.9' }, 'admin API call');
    w1.log.info({ event: 'portal.view', portalId: 'P-OTHER', queueId: '01JSOMEOTHERMSG001', identity: 'pat@home.test' }, 'another message');
    await w1.t.flush();

    const [t, ...rest] = await traceMessages(dataDir, '<m1@clinic.test>');
    expect(rest).toEqual([]);
    expect(t).toMatchObject({ queueId: Q, messageId: '<m1@clinic.test>', from: 'dr@clinic.test', inspection: { detectors: [{ detector: 'ssn', count: 2 }], score: 20 } });
    const pat = t?.recipients.find((r) => r.address === 'pat@home.test');
    expect(pat?.final).toBe('portal');
    expect(pat?.portal.map((e) => e.event)).toEqual(['portal.notice', 'portal.login-failed', 'portal.locked', 'portal.view', 'portal.reply']);
    expect(pat?.portal.every((e) => e.fields.identity !== 'stranger@home.test')).toBe(true);
    expect(t?.recipients.find((r) => r.address === 'gone@home.test')?.final).toBe('bounced');
    expect(t?.portal.map((e) => e.event)).toEqual(['portal.revoked']);
    expect(t?.related).toEqual([
      { kind: 'portal-notice', queueId: '01JNOTICE000000001', to: 'pat@home.test' },
      { kind: 'bounce-report', queueId: '01JDSN000000000001', to: 'dr@clinic.test' },
      { kind: 'portal-reply', queueId: '01JREPLY0000000001' },
    ]);
    const text = formatTrace([t!]);
    expect(text).toMatch(/inspected: 2 part\(s\), 1 attachment\(s\), ssn×2, score 20/);
    expect(text).toMatch(/recipient pat@home\.test: delivered to the secure portal/);
    expect(text).toMatch(/recipient gone@home\.test: bounced/);
    expect(text).toMatch(/related: bounce-report 01JDSN000000000001/);
    expect(t?.other.map((e) => e.event)).toEqual(['dsn.queued', 'api.call']);
    expect(text).toMatch(/api\.call {2}actor=ops-key role=operator method=POST path=\/api\/v1\/queue\/\S+\/retry status=200 ip=10\.0\.0\.9/);

    // The sender's address finds it too; the stranger's login failure belongs to no message.
    expect((await traceMessages(dataDir, 'dr@clinic.test')).map((r) => r.queueId)).toEqual([Q]);
    expect(await traceMessages(dataDir, 'stranger@home.test')).toEqual([]);
  });

  it('--since takes a duration back from now or an ISO time', () => {
    const now = Date.parse('2026-05-23T12:00:00Z');
    expect(parseSince('2h', now)).toBe(Date.parse('2026-05-23T10:00:00Z'));
    expect(parseSince('2026-05-01T00:00:00Z', now)).toBe(Date.parse('2026-05-01T00:00:00Z'));
    expect(() => parseSince('yesterday-ish', now)).toThrow(/neither a duration/);
  });

  it('a duration further back than the epoch means everything (it was no valid date: the API answered 500)', async () => {
    const now = Date.parse('2026-05-23T12:00:00Z');
    expect(parseSince('99999999999d', now)).toBe(0);
    await expect(traceMessages(tempDir(), 'x', { since: parseSince('99999999999d') })).resolves.toEqual([]);
  });
});
