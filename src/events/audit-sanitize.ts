/**
 * What may leave a log line for the audit trail and webhooks: ids, addresses, counts,
 * verdicts. Secrets and message content never do, even when a call site logs them by
 * mistake — the logger's redaction only applies to the printed line, not to the bus.
 */

/** Names of fields that may hold a secret (compared lower-case, with - and _ removed). */
const SECRET_NAME = /password|passwd|passphrase|secret|token|authorization|cookie|credential|apikey|privatekey|^key$|^pass$/;

/** Fields that may hold message content (PHI): bodies, text samples, matches, subjects. */
const CONTENT_NAMES = new Set(['body', 'content', 'text', 'html', 'raw', 'subject', 'match', 'matches', 'sample', 'snippet', 'attachment-content', 'data']);

/** Long strings are cut: a record describes what happened, it is not a copy of it. */
const MAX_STRING = 2000;
const MAX_DEPTH = 6;
const MAX_ITEMS = 200;

/** Field names repeat in every record: each is judged once (bounded, as names come from code). */
const judged = new Map<string, boolean>();
const MAX_JUDGED = 10_000;

export function isSecretOrContentKey(name: string): boolean {
  let verdict = judged.get(name);
  if (verdict === undefined) {
    const n = name.toLowerCase().replace(/[-_]/g, '');
    verdict = SECRET_NAME.test(n) || CONTENT_NAMES.has(name.toLowerCase());
    if (judged.size < MAX_JUDGED) judged.set(name, verdict);
  }
  return verdict;
}

/** A plain-JSON copy of the fields without secret or content keys (the `event` key too: it is the record's own). */
export function sanitizeFields(fields: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'event' || isSecretOrContentKey(k)) continue;
    const clean = cleanValue(v, 1);
    if (clean !== undefined) out[k] = clean;
  }
  return out;
}

function cleanValue(v: unknown, depth: number): unknown {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string') return v.length > MAX_STRING ? `${v.slice(0, MAX_STRING)}…` : v;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Error) return cleanValue(v.message, depth);
  if (typeof v !== 'object' || v === undefined) return undefined; // functions, symbols
  if (Buffer.isBuffer(v) || ArrayBuffer.isView(v)) return undefined; // bytes are content
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  if (Array.isArray(v)) return v.slice(0, MAX_ITEMS).map((x) => cleanValue(x, depth + 1) ?? null);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (isSecretOrContentKey(k)) continue;
    const clean = cleanValue(x, depth + 1);
    if (clean !== undefined) out[k] = clean;
  }
  return out;
}
