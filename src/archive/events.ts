/**
 * Stable event codes of the archive (same rules as src/events/logger.ts EVENTS: never
 * change their meaning). Log lines carry ids and counts, never content.
 */
export const ARCHIVE_EVENTS = {
  journaled: 'archive.journaled',
  journalFailed: 'archive.journal-failed',
  /** The worker delivers although journaling failed (archive.failOpen). */
  failOpen: 'archive.fail-open',
  devKey: 'archive.dev-key',
  recovered: 'archive.recovered',
  purged: 'archive.purged',
  purgeFailed: 'archive.purge-failed',
  purgeSkipped: 'archive.purge-skipped',
  /** Nothing was purged: the admin chain (holds) did not verify. */
  purgeRefused: 'archive.purge-refused',
} as const;
