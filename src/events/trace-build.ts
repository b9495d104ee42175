import type { TraceAttempt, TraceEvent, TraceRecipient, TraceReport, TraceTls } from './trace-types.js';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const strs = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.map(String) : undefined);

/** Portal records that belong to one recipient, found by its address (`to`, or `identity` in the web app). */
const RECIPIENT_PORTAL = new Set(['portal.notice', 'portal.fallback', 'portal.view', 'portal.download', 'portal.reply', 'portal.login-failed', 'portal.locked']);
const ATTEMPT_STATUS: Record<string, TraceAttempt['status']> = { 'delivery.sent': 'sent', 'delivery.deferred': 'deferred', 'delivery.bounced': 'bounced' };

function attemptOf(e: TraceEvent, status: TraceAttempt['status']): TraceAttempt {
  const f = e.fields;
  const delays = f.delays && typeof f.delays === 'object' ? (f.delays as TraceAttempt['delays']) : undefined;
  const tls = f.tls && typeof f.tls === 'object' ? (f.tls as TraceTls) : undefined;
  return {
    time: e.time,
    status,
    attempt: num(f.attempt),
    method: str(f.method),
    relay: str(f.relay),
    route: str(f.route),
    tls,
    dsn: str(f.dsn),
    category: str(f.category),
    response: str(f.response),
    delays,
    nextAttemptAt: str(f.nextAttemptAt),
  };
}

function finalOf(r: TraceRecipient): TraceRecipient['final'] {
  const last = r.attempts.at(-1);
  if (!last) return 'undecided';
  if (last.status === 'bounced') return 'bounced';
  if (last.status === 'deferred') return 'deferred';
  return last.method === 'portal' || last.category === 'portal' ? 'portal' : 'delivered';
}

/** Puts one message's records (in time order) into the shape of a trace. */
export function buildReport(queueId: string, events: TraceEvent[]): TraceReport {
  const report: TraceReport = { queueId, journal: [], variants: [], recipients: [], portal: [], related: [], other: [], events };
  const byAddress = new Map<string, TraceRecipient>();
  const recipient = (address: string): TraceRecipient => {
    const key = address.toLowerCase();
    let r = byAddress.get(key);
    if (!r) {
      r = { address, attempts: [], portal: [], final: 'undecided' };
      byAddress.set(key, r);
      report.recipients.push(r);
    }
    return r;
  };
  for (const e of events) {
    const f = e.fields;
    const to = str(f.to);
    if (e.event === 'queue.accepted' && f.queueId === queueId) {
      report.from = str(f.from);
      report.received = { time: e.time, ip: str(f.ip), helo: str(f.helo), sessionId: str(f.sessionId), tls: str(f.tls), cipher: str(f.cipher), authUser: str(f.authUser), size: num(f.size), recipients: num(f.nrcpt) };
    } else if (e.event === 'inspect.done') {
      report.messageId = str(f.messageId);
      const detectors = Array.isArray(f.detectors) ? (f.detectors as { detector: string; count: number }[]) : [];
      report.inspection = { time: e.time, parts: num(f.parts), attachments: num(f.attachments), detectors, score: num(f.score), subjectTagged: f.subjectTagged === true, error: str(f.error) };
    } else if (e.event === 'policy.decision' && to) {
      recipient(to).decision = { time: e.time, rule: str(f.rule), method: str(f.method), candidates: strs(f.candidates), tls: str(f.tls), onNoMethod: str(f.onNoMethod), reasons: strs(f.reasons) };
    } else if (ATTEMPT_STATUS[e.event] && to) {
      recipient(to).attempts.push(attemptOf(e, ATTEMPT_STATUS[e.event] as TraceAttempt['status']));
    } else if (RECIPIENT_PORTAL.has(e.event) && (to ?? str(f.identity))) {
      recipient((to ?? str(f.identity)) as string).portal.push(e);
    } else if (e.event.startsWith('portal.')) {
      report.portal.push(e);
    } else if (e.event.startsWith('archive.')) {
      report.journal.push(e);
    } else if (e.event.startsWith('protect.') || e.event.startsWith('dkim.')) {
      report.variants.push(e);
    } else if (!ATTEMPT_STATUS[e.event] && e.event !== 'policy.decision') {
      report.other.push(e);
    }
    if (e.event === 'dsn.queued' && str(f.dsnQueueId)) report.related.push({ kind: 'bounce-report', queueId: str(f.dsnQueueId) as string, to: str(f.to) });
    if (e.event === 'portal.notice' && str(f.noticeQueueId)) report.related.push({ kind: 'portal-notice', queueId: str(f.noticeQueueId) as string, to });
    if (e.event === 'portal.reply' && str(f.replyQueueId)) report.related.push({ kind: 'portal-reply', queueId: str(f.replyQueueId) as string });
  }
  for (const r of report.recipients) r.final = finalOf(r);
  return report;
}
