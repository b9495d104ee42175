import type { Logger } from '../events/logger.js';
import { ARCHIVE_EVENTS } from './events.js';
import { incompleteReasons, type SearchQuery, type SearchResult } from './search.js';

/** Ids listed per line; a larger result says how many more (the audit trail keeps lines bounded). */
const MAX_IDS = 200;

const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());

/**
 * The filters of a search as a log line may carry them: a keyword or a subject is words
 * from the messages, so only that one was given.
 */
export function loggedFilters(q: SearchQuery): Record<string, unknown> {
  return {
    since: iso(q.since),
    until: iso(q.until),
    participant: q.participant,
    sender: q.sender,
    recipient: q.recipient,
    messageId: q.messageId,
    subjectGiven: q.subject ? true : undefined,
    keywordGiven: q.keyword ? true : undefined,
  };
}

export interface ArchiveAccess {
  actor: string;
  /** 'cli' or 'api'. */
  via: string;
  query: SearchQuery;
  result: SearchResult;
}

function fields(a: ArchiveAccess): Record<string, unknown> {
  const ids = a.result.hits.map((h) => h.meta.id);
  const incomplete = incompleteReasons(a.result);
  return {
    actor: a.actor,
    via: a.via,
    filters: loggedFilters(a.query),
    count: ids.length,
    queueIds: ids.slice(0, MAX_IDS),
    moreQueueIds: ids.length > MAX_IDS ? ids.length - MAX_IDS : undefined,
    complete: incomplete.length === 0,
    incomplete: incomplete.length ? incomplete : undefined,
  };
}

/** archive.searched: who looked for what, and which items it showed them (audited). */
export function logSearched(log: Logger, a: ArchiveAccess): void {
  log.info({ event: ARCHIVE_EVENTS.searched, ...fields(a) }, 'archive searched');
}

/**
 * archive.exported: who took which messages out, in what format, and how it ended:
 * `completed`, `aborted` (failed or cut off part way: `err`), `refused` (an incomplete
 * result without --allow-partial / allowPartial).
 */
export function logExported(log: Logger, a: ArchiveAccess & { format: string; outcome: 'completed' | 'aborted' | 'refused'; err?: string | undefined }): void {
  const line = { event: ARCHIVE_EVENTS.exported, ...fields(a), format: a.format, outcome: a.outcome, err: a.err };
  if (a.outcome === 'completed') log.info(line, 'archive exported');
  else log.warn(line, `archive export ${a.outcome}`);
}
