import { windowStart } from '../hit-counter.js';
import { addressKey, type PortalStore } from '../store.js';
import { LOCK_AFTER, LOCK_FOR_MS } from './lockout.js';

/**
 * Lock answers for an address that has no account, so that the answers to wrong
 * passwords do not tell which addresses have one: the fifth failure within a lock
 * period answers "too many failed attempts" and so do the next ones, as for a real
 * account. Counted with the rate-limit counters (memory, or the shared Redis), by a hash
 * of the address, never as a stored account: anyone may try any address.
 */
export async function ghostFailure(store: Pick<PortalStore, 'countHit'>, identity: string, now = Date.now()): Promise<{ locked: 'before' | 'now' | false; until: number }> {
  const n = await store.countHit(`ghost-fail:${addressKey(identity)}`, LOCK_FOR_MS);
  return { locked: n > LOCK_AFTER ? 'before' : n === LOCK_AFTER ? 'now' : false, until: windowStart(now, LOCK_FOR_MS) + LOCK_FOR_MS };
}
