import type { Logger } from '../events/logger.js';
import type { AdminChainBroken } from './admin-state.js';
import { ARCHIVE_EVENTS } from './events.js';
import type { PurgeReport } from './purge.js';

/**
 * The log lines of a purge run, the same from the periodic job and from `postern archive
 * purge` (whose lines go to the audit trail's "cli" chain): counts and ids, never content.
 * Each destroyed item has its own archive.destroyed line, written by the purge itself.
 */
export function logPurgeDone(log: Logger, r: PurgeReport, actor: string): void {
  log.info({ event: ARCHIVE_EVENTS.purged, examined: r.examined, purged: r.purged.length, held: r.held.length, failed: r.failed.length, brokenChains: r.brokenChains.length, finished: r.finished, filesRemoved: r.filesRemoved, actor }, 'archive retention purge done');
  for (const f of r.failed) log.warn({ event: ARCHIVE_EVENTS.purgeFailed, itemId: f.id, err: f.error, actor }, 'archive item could not be checked for retention; kept');
  // As loud as a broken admin chain: the items of that chain are never purged until it is repaired.
  for (const p of r.brokenChains) log.error({ event: ARCHIVE_EVENTS.purgeRefused, chain: p.chain, record: p.record, problem: p.problem, actor }, 'archive retention purge kept every item of a journal chain that does not verify');
}

export function logPurgeRefused(log: Logger, err: AdminChainBroken, actor: string): void {
  log.error({ event: ARCHIVE_EVENTS.purgeRefused, chain: err.problem.chain, record: err.problem.record, problem: err.problem.problem, actor }, 'archive retention purge refused: the archive does not match its admin chain; nothing was destroyed');
}
