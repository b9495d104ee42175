/**
 * The compliance archive's entry points for the gateway (src/main.ts and the delivery
 * worker). The CLI (src/cli/archive.ts) uses the modules directly.
 */
export { Journal, JournalError, openJournal, type JournalOptions } from './journal.js';
export { startRetentionJob } from './retention-job.js';
export { ARCHIVE_EVENTS } from './events.js';
export type { JournalItem } from './types.js';
