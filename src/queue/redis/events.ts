import { EVENTS } from '../../events/logger.js';

/**
 * Stable event codes of the Redis queue (same rules as EVENTS in src/events/logger.ts,
 * where they belong once that file is merged with this backend's wiring).
 */
export const REDIS_EVENTS = {
  /** The start-up persistence check found that acknowledged mail could be lost. */
  durability: 'queue.redis-durability',
  /** A Redis command or connection failed (outage, timeout, refused script). */
  error: 'queue.redis-error',
  /** Leases this instance held expired before renewal; another instance may deliver them. */
  leaseLost: EVENTS.leaseLost,
} as const;
