import type { PortalStore } from '../store.js';
import { recordFailure } from './lockout.js';

/**
 * Counts a failed login of `identity` on its account, or, for an address without one,
 * on a record of its own (PortalStore.updateLoginFailures). The same rules run on both,
 * so neither the answers nor when a lock ends tell which addresses have an account.
 * Resolves to the failures in the last hour, and the lock's end when this one started it.
 */
export async function recordLoginFailure(store: Pick<PortalStore, 'updateAccount' | 'updateLoginFailures'>, identity: string, hasAccount: boolean): Promise<{ failures: number; lockedUntil?: number | undefined }> {
  let locked = false;
  const after = hasAccount
    ? await store.updateAccount(identity, (current) => {
        // Counted on the stored record in one step: failures seen by other instances count too.
        if (current) locked = recordFailure(current);
        return current;
      })
    : await store.updateLoginFailures(identity, (current) => {
        locked = recordFailure(current);
      });
  return { failures: after?.failures.length ?? 0, lockedUntil: locked ? after?.lockedUntil : undefined };
}
