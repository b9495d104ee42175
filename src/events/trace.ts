import { parseDuration } from '../config/units.js';
import { auditRecords, type ShardRecord } from './audit-read.js';
import { buildReport } from './trace-build.js';
import type { TraceEvent, TraceReport } from './trace-types.js';

export type * from './trace-types.js';

export interface TraceOptions {
  /** Epoch ms: only records from then on (see parseSince). */
  since?: number | undefined;
}

/** "--since 2h" (a duration back from now) or an ISO 8601 time → epoch ms. */
export function parseSince(text: string, now = Date.now()): number {
  const ms = parseDuration(text);
  // Further back than the epoch is everything (and no valid date: 99999999999d gave a 500).
  if (ms !== undefined) return Math.max(0, now - ms);
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new Error(`"${text}" is neither a duration (e.g. 2h, 3d) nor an ISO 8601 time`);
  return t;
}

const bare = (id: string) => id.trim().replace(/^<|>$/g, '');

/** Address-like fields of a record: any of them equal to the query makes the message match. */
function addresses(f: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const k of ['from', 'to', 'address', 'identity']) {
    const v = f[k];
    if (typeof v === 'string') out.push(v.toLowerCase());
    else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') out.push(x.toLowerCase());
  }
  return out;
}

/**
 * The life of every message matching a queue id, a Message-ID (with or without <>) or an
 * address (sender or recipient), from the audit trail of every worker. Two passes over
 * the trail keep memory to the matching messages: the first finds their queue ids (and
 * their portal copies), the second collects their records.
 */
export async function traceMessages(dataDir: string, query: string, opts: TraceOptions = {}): Promise<TraceReport[]> {
  const q = query.trim();
  const qLower = q.toLowerCase();
  const qId = bare(q);
  const matched = new Set<string>();
  const portalOf = new Map<string, string>(); // portal message id → queue id
  const noticed = new Map<string, { queueId: string; time: string }[]>(); // portal recipient → their notices
  for await (const r of auditRecords(dataDir, opts.since)) {
    const id = typeof r.fields.queueId === 'string' ? r.fields.queueId : undefined;
    if (!id) continue;
    if (r.event === 'portal.notice' && typeof r.fields.portalId === 'string') {
      portalOf.set(r.fields.portalId, id);
      const to = String(r.fields.to).toLowerCase();
      // Appended in place: a copy per notice made every trace quadratic in one address's notices.
      const list = noticed.get(to);
      if (list) list.push({ queueId: id, time: r.time });
      else noticed.set(to, [{ queueId: id, time: r.time }]);
    }
    if (id === q || (typeof r.fields.messageId === 'string' && bare(r.fields.messageId) === qId) || addresses(r.fields).includes(qLower)) matched.add(id);
  }
  if (!matched.size) return [];

  const byQueue = new Map<string, TraceEvent[]>([...matched].map((id) => [id, []]));
  for await (const r of auditRecords(dataDir, opts.since)) {
    for (const id of owners(r, matched, portalOf, noticed)) byQueue.get(id)?.push({ time: r.time, event: r.event, shard: r.shard, fields: r.fields });
  }
  const reports = [...byQueue].map(([id, events]) => buildReport(id, events.sort((a, b) => a.time.localeCompare(b.time))));
  return reports.sort((a, b) => (a.events[0]?.time ?? '').localeCompare(b.events[0]?.time ?? ''));
}

/**
 * Which matched messages a record belongs to. Web-app records name the portal copy, not
 * always the queue id; login failures and locks name only the reader, and belong to every
 * matched message that reader was sent to the portal for, from its notice on.
 */
function owners(r: ShardRecord, matched: Set<string>, portalOf: Map<string, string>, noticed: Map<string, { queueId: string; time: string }[]>): string[] {
  const id = typeof r.fields.queueId === 'string' ? r.fields.queueId : typeof r.fields.portalId === 'string' ? portalOf.get(r.fields.portalId) : undefined;
  if (id) return matched.has(id) ? [id] : [];
  if ((r.event === 'portal.login-failed' || r.event === 'portal.locked') && typeof r.fields.identity === 'string') {
    const notices = noticed.get(r.fields.identity.toLowerCase()) ?? [];
    return notices.filter((n) => matched.has(n.queueId) && n.time <= r.time).map((n) => n.queueId);
  }
  return [];
}
