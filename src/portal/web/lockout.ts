import { FAILURES_KEPT_MS, type LoginFailures } from '../store.js';

export const LOCK_AFTER = 5;
export const LOCK_FOR_MS = 10 * 60_000;
export const MAX_FAILURES_PER_HOUR = 100;

/**
 * Brute-force rules: five failures in a row lock the account for ten minutes; at most a
 * hundred failures an hour. Locks always end by themselves: an attacker can slow a
 * recipient down, never lock them out for good. The same rules run on the failures of
 * an address without an account (PortalStore.getLoginFailures).
 */
export function lockedUntil(account: LoginFailures, now = Date.now()): number | undefined {
  if (account.lockedUntil && account.lockedUntil > now) return account.lockedUntil;
  const lastHour = account.failures.filter((t) => now - t < FAILURES_KEPT_MS);
  if (lastHour.length >= MAX_FAILURES_PER_HOUR) return (lastHour[0] as number) + FAILURES_KEPT_MS;
  return undefined;
}

/** Records a failure; returns true when it started a lock. */
export function recordFailure(account: LoginFailures, now = Date.now()): boolean {
  account.failures = [...account.failures.filter((t) => now - t < FAILURES_KEPT_MS), now];
  const recent = account.failures.slice(-LOCK_AFTER);
  const sinceLastLock = account.lockedUntil ? recent.filter((t) => t > (account.lockedUntil as number)) : recent;
  if (sinceLastLock.length >= LOCK_AFTER) {
    account.lockedUntil = now + LOCK_FOR_MS;
    return true;
  }
  return false;
}

export function recordSuccess(account: LoginFailures): void {
  account.lockedUntil = undefined;
  account.failures = [];
}
