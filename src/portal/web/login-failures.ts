import type { LoginFailures, PortalStore } from '../store.js';
import { releaseAttempt, reserveAttempt, settleAttempt, type Reservation, type Settlement } from './lockout.js';

type FailureStore = Pick<PortalStore, 'updateAccount' | 'updateLoginFailures'>;

/**
 * One change, as one step, of the record the lock rules run on for `identity`: its
 * account, or, for an address without one, a record of its own
 * (PortalStore.updateLoginFailures). The same rules run on both, so neither the answers
 * nor when a lock ends tell which addresses have an account. Resolves to what `change`
 * returned (undefined when the account has gone) and the record afterwards.
 */
async function changeRecord<T>(store: FailureStore, identity: string, hasAccount: boolean, change: (record: LoginFailures) => T): Promise<{ result: T | undefined; record: LoginFailures | undefined }> {
  let result: T | undefined;
  const record = hasAccount
    ? await store.updateAccount(identity, (current) => {
        // Changed on the stored record in one step: what other instances did counts too.
        if (current) result = change(current);
        return current;
      })
    : await store.updateLoginFailures(identity, (current) => {
        result = change(current);
      });
  return { result, record };
}

/** Reserves a password check before it is made (reserveAttempt), on the shared record. */
export async function reserveLogin(store: FailureStore, identity: string, hasAccount: boolean): Promise<Reservation> {
  const { result } = await changeRecord(store, identity, hasAccount, (r) => reserveAttempt(r));
  // The account went away in between: nothing to check against.
  return result ?? { outcome: 'busy' };
}

/** Takes back a reservation whose check was never made (busy hashing, an error). */
export async function releaseLogin(store: FailureStore, identity: string, hasAccount: boolean, at: number): Promise<void> {
  await changeRecord(store, identity, hasAccount, (r) => releaseAttempt(r, at));
}

/**
 * Settles a reserved check in one step (settleAttempt); with the failures in the last
 * hour and, for a failure that started a lock, the lock's end.
 */
export async function settleLogin(store: FailureStore, identity: string, hasAccount: boolean, at: number, ok: boolean): Promise<Settlement & { failures: number; lockedUntil?: number | undefined }> {
  const { result, record } = await changeRecord(store, identity, hasAccount, (r) => settleAttempt(r, at, ok));
  const settled: Settlement = result ?? { outcome: 'failed', startedLock: false };
  const startedLock = settled.outcome === 'failed' && settled.startedLock;
  return { ...settled, failures: record?.failures.length ?? 0, lockedUntil: startedLock ? record?.lockedUntil : undefined };
}
