/**
 * Stable event codes of the archive (same rules as src/events/logger.ts EVENTS: never
 * change their meaning). Log lines carry ids and counts, never content. The legal hold
 * codes (archive.hold-added, archive.hold-released) are in EVENTS with the other
 * operator changes.
 */
export const ARCHIVE_EVENTS = {
  journaled: 'archive.journaled',
  journalFailed: 'archive.journal-failed',
  /** The worker delivers although journaling failed (archive.failOpen). */
  failOpen: 'archive.fail-open',
  devKey: 'archive.dev-key',
  recovered: 'archive.recovered',
  /** One item crypto-shredded by a purge (ids and the rule, never content). */
  destroyed: 'archive.destroyed',
  purged: 'archive.purged',
  purgeFailed: 'archive.purge-failed',
  purgeSkipped: 'archive.purge-skipped',
  /** A gateway's journal chain could not be listed in the admin chain (chain-listing.ts): its deletion would not show until it is. */
  chainUnlisted: 'archive.chain-unlisted',
  /** Nothing was purged: the admin chain (holds) did not verify. */
  purgeRefused: 'archive.purge-refused',
  /** postern archive rotate-key re-wrapped the item keys with a new master key. */
  keyRotated: 'archive.key-rotated',
  /** Someone searched the archive (CLI or admin API): who, the filters (never a keyword or subject), what was found. */
  searched: 'archive.searched',
  /** Someone exported archived messages: who, the filters, which items, and whether the export completed. */
  exported: 'archive.exported',
} as const;
