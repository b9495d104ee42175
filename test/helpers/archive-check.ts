import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openArchive } from '../../src/archive/admin.js';
import type { CatalogEntry } from '../../src/archive/reader.js';
import type { ItemMeta } from '../../src/archive/types.js';
import type { PosternConfig } from '../../src/config/schema.js';
import { inspectMessage } from '../../src/inspect/inspector.js';
import { DEFAULT_POLICY, parsePolicyText } from '../../src/policy/store.js';
import type { LogLine } from './gateway.js';

/** Per-recipient lines that tell what happened to a recipient on an attempt. */
const OUTCOMES = new Set(['delivery.sent', 'delivery.deferred', 'delivery.bounced', 'portal.notice', 'portal.fallback']);
/** Per-recipient lines (`to`): the recipients the gateway handled. */
const PER_RECIPIENT = new Set([...OUTCOMES, 'policy.decision', 'tls.foreseen']);
/** Deferral and bounce categories the planner gives a recipient it holds before the journal step. */
const HELD = new Set(['policy', 'inspect']);

/**
 * The method the archive must show for a recipient, from the gateway's own log: what
 * the attempt that journaled the message did with it. undefined: nothing happened to
 * it yet (the gateway stopped first).
 */
function expectedMethod(lines: LogLine[], rcpt: string): string | undefined {
  const journaledAt = lines.findIndex((l) => l.event === 'archive.journaled');
  const first = lines.slice(journaledAt + 1).find((l) => OUTCOMES.has(String(l.event)) && l.to === rcpt);
  if (!first) return undefined;
  if ((first.event === 'delivery.deferred' || first.event === 'delivery.bounced') && HELD.has(String(first.category))) return first.event === 'delivery.bounced' ? 'bounce' : 'defer';
  if (first.event === 'portal.notice' || first.category === 'portal') return 'portal';
  if (first.event === 'delivery.sent') return String(first.method);
  // Deferred or bounced by the next hop, or moved to the portal after TLS failed: the method it was tried with.
  return lines.find((l) => l.event === 'policy.decision' && l.to === rcpt)?.method as string | undefined;
}

/** Strings from a message that must not be found in clear in any archive file (long enough not to turn up by chance). */
function markersOf(raw: Buffer, subject: string): string[] {
  const text = raw.toString('utf8');
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  const lines = body.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length >= 16 && !l.startsWith('--'));
  return [...(subject.length >= 12 ? [subject] : []), ...lines.slice(0, 3)];
}

/** Every file below a directory. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile());
}

/**
 * The policy whose detectors found the categories (to find them again); undefined when
 * a test left its policy file broken (a hot-reload test): then categories are not compared.
 */
function policyNow(config: PosternConfig) {
  if (!config.policy.file) return DEFAULT_POLICY;
  try {
    return parsePolicyText(readFileSync(config.policy.file, 'utf8'), config.policy.file);
  } catch {
    return undefined;
  }
}

/** What the check needs of a gateway (a TestGateway, or a child process's config, data directory and log lines). */
export interface ArchivedGateway {
  config: PosternConfig;
  dataDir: string;
  logs: LogLine[];
}

/**
 * The recipients as the archive has them against the envelope's as the gateway handled
 * them: as many as it accepted, the same set in rcptTo and in the per-recipient entries,
 * every recipient the gateway logged among them, with the method (what the journaling
 * attempt did with it) and the policy rule it used.
 */
function recipientProblems(id: string, meta: ItemMeta, lines: LogLine[], accepted: LogLine): string[] {
  const problems: string[] = [];
  const archived = new Set(meta.rcptTo);
  if (meta.rcptTo.length !== accepted.nrcpt) problems.push(`${id}: ${meta.rcptTo.length} recipient(s) in the archive, ${String(accepted.nrcpt)} accepted`);
  const entries = new Set(meta.recipients.map((r) => r.rcpt));
  if (entries.size !== archived.size || [...entries].some((r) => !archived.has(r))) problems.push(`${id}: rcptTo ${JSON.stringify(meta.rcptTo)} and the per-recipient entries ${JSON.stringify([...entries])} are not the same set`);
  const handled = new Set(lines.flatMap((l) => (PER_RECIPIENT.has(String(l.event)) && typeof l.to === 'string' ? [l.to] : [])));
  for (const rcpt of handled) {
    if (!archived.has(rcpt)) {
      problems.push(`${id}: rcptTo is ${JSON.stringify(meta.rcptTo)} in the archive, but the gateway handled ${rcpt}`);
      continue;
    }
    const entry = meta.recipients.find((r) => r.rcpt === rcpt);
    const method = expectedMethod(lines, rcpt);
    if (method !== undefined && entry?.method !== method) problems.push(`${id}: ${rcpt} is archived as ${entry?.method ?? '(missing)'}, the gateway used ${method}`);
    const decided = lines.find((l) => l.event === 'policy.decision' && l.to === rcpt);
    if (decided && entry?.ruleId !== decided.rule) problems.push(`${id}: ${rcpt} is archived under rule ${entry?.ruleId ?? '(missing)'}, the gateway decided by ${String(decided.rule)}`);
  }
  return problems;
}

/**
 * After a gateway stopped: every message it accepted and began to deliver is in its
 * archive (the journal step comes before any delivery), with the metadata the rest of
 * the gateway saw: sender, size and recipients (queue.accepted and every per-recipient
 * line), Message-ID (inspect.done), subject and detector categories (the stored
 * original inspected again), each recipient's method and rule; every message it
 * journaled (its own notices and reports too) is there; and no archive file holds the
 * text of any of them. Returns the problems found (empty: all is well).
 */
export async function archiveProblems(gw: ArchivedGateway): Promise<string[]> {
  const { archive } = gw.config;
  if (!archive.enabled || !archive.sinks.some((s) => s.type === 'fs')) return [];
  const problems: string[] = [];
  const byId = new Map<string, LogLine[]>();
  for (const l of gw.logs) if (typeof l.queueId === 'string') byId.set(l.queueId, [...(byId.get(l.queueId) ?? []), l]);
  const { reader } = await openArchive(gw.config, gw.dataDir);
  const stored = new Map<string, CatalogEntry>();
  for await (const e of reader.items()) {
    if (stored.has(e.record.id)) problems.push(`${e.record.id}: archived twice`);
    stored.set(e.record.id, e);
  }
  const policy = policyNow(gw.config);
  const markers = new Map<string, string>();
  for (const [id, lines] of byId) {
    const has = (event: string) => lines.some((l) => l.event === event);
    const journaled = has('archive.journaled');
    const entry = stored.get(id);
    if (journaled && !entry) problems.push(`${id}: journaled, but not in the archive`);
    const accepted = lines.find((l) => l.event === 'queue.accepted');
    const attempted = lines.some((l) => OUTCOMES.has(String(l.event)) && l.category !== 'journal');
    if (accepted && attempted && !journaled && !has('archive.fail-open')) problems.push(`${id}: delivery began without a journal copy`);
    if (!accepted || !entry) continue;
    let meta: ItemMeta;
    let raw: Buffer;
    try {
      [meta, raw] = await Promise.all([reader.meta(entry), reader.content(entry)]);
    } catch (err) {
      problems.push(`${id}: unreadable in the archive: ${(err as Error).message}`);
      continue;
    }
    const facts = await inspectMessage(raw, raw.length, (policy ?? DEFAULT_POLICY).detectors);
    const inspected = lines.find((l) => l.event === 'inspect.done');
    const want: Partial<Record<keyof ItemMeta, unknown>> = {
      mailFrom: accepted.from,
      size: accepted.size,
      subject: facts.subject,
      messageId: inspected ? inspected.messageId : facts.messageId,
      ...(policy ? { categories: [...facts.detectors.categories].sort() } : {}),
    };
    const got: Partial<Record<keyof ItemMeta, unknown>> = { mailFrom: meta.mailFrom, size: meta.size, subject: meta.subject, messageId: meta.messageId, categories: [...meta.categories].sort() };
    for (const k of Object.keys(want) as (keyof ItemMeta)[]) {
      if (JSON.stringify(got[k]) !== JSON.stringify(want[k])) problems.push(`${id}: ${k} is ${JSON.stringify(got[k])} in the archive, ${JSON.stringify(want[k])} in the gateway`);
    }
    if (raw.length !== accepted.size) problems.push(`${id}: the archived original has ${raw.length} bytes, the gateway accepted ${String(accepted.size)}`);
    problems.push(...recipientProblems(id, meta, lines, accepted));
    for (const m of markersOf(raw, facts.subject)) markers.set(m, id);
  }
  for (const f of filesUnder(join(gw.dataDir, 'archive'))) {
    const bytes = readFileSync(f);
    for (const [m, id] of markers) if (bytes.includes(m)) problems.push(`${f} holds text of ${id} in clear: ${JSON.stringify(m)}`);
  }
  return problems;
}

/** As a gateway's afterStop hook: fails when its archive does not match what it did. */
export async function expectArchiveMatches(gw: ArchivedGateway): Promise<void> {
  const problems = await archiveProblems(gw);
  if (problems.length) throw new Error(`the archive does not match what the gateway did:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}
