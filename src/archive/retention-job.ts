import type { PosternConfig } from '../config/schema.js';
import type { Logger } from '../events/logger.js';
import { openArchive, withAdminChain } from './admin.js';
import { AdminChainBroken } from './admin-state.js';
import { ARCHIVE_EVENTS } from './events.js';
import { purgeExpired } from './purge.js';
import { logPurgeDone, logPurgeRefused } from './purge-log.js';

/** Who the job's destructions are recorded as (the audit trail's actor). */
const JOB_ACTOR = 'retention-job';

/** setInterval cannot wait longer than this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The periodic purge (archive.purgeInterval), first run after `firstRunMs`. When another
 * process holds the admin chain (another worker's job, or the CLI), this round is
 * skipped: the next one catches up. A round whose admin chain does not verify destroys
 * nothing and logs archive.purge-refused (counted in the metrics). Returns the stop function; it waits for a run in
 * progress.
 */
export function startRetentionJob(config: PosternConfig, dataDir: string, logger: Logger, opts: { firstRunMs?: number } = {}): () => Promise<void> {
  const log = logger.child({ component: 'archive' });
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = () => {
    if (running || stopped) return;
    running = (async () => {
      try {
        const { reader } = await openArchive(config, dataDir);
        const r = await withAdminChain(reader, (chain) => purgeExpired(reader, config.archive.retention, chain, { log, actor: JOB_ACTOR }), 0);
        logPurgeDone(log, r, JOB_ACTOR);
      } catch (err) {
        if (err instanceof AdminChainBroken) {
          // Loud, every round, until someone repairs the chain: held items must not be shredded on a guess.
          logPurgeRefused(log, err, JOB_ACTOR);
          return;
        }
        const busy = /in use by another process/.test((err as Error).message);
        if (busy) log.info({ event: ARCHIVE_EVENTS.purgeSkipped }, 'archive purge skipped: another process is purging or editing holds');
        else log.error({ event: ARCHIVE_EVENTS.purgeFailed, err: (err as Error).message }, 'archive retention purge failed');
      }
    })().finally(() => {
      running = undefined;
    });
  };
  const first = setTimeout(run, opts.firstRunMs ?? 60_000);
  const timer = setInterval(run, Math.min(Math.max(config.archive.purgeInterval, 1000), MAX_TIMER_MS));
  first.unref();
  timer.unref();
  return async () => {
    stopped = true;
    clearTimeout(first);
    clearInterval(timer);
    await running;
  };
}
