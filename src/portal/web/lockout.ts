import { FAILURES_KEPT_MS, type LoginFailures } from '../store.js';

export const LOCK_AFTER = 5;
export const LOCK_FOR_MS = 10 * 60_000;
export const MAX_FAILURES_PER_HOUR = 100;
/**
 * How long a reserved attempt counts when it is never settled (its process ended during
 * the check): far longer than a check may take (five seconds' wait, then scrypt).
 */
export const PENDING_MS = 60_000;

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

export type Reservation = { outcome: 'locked'; until: number } | { outcome: 'busy' } | { outcome: 'reserved'; at: number };
export type Settlement = { outcome: 'accepted' } | { outcome: 'locked'; until: number } | { outcome: 'failed'; startedLock: boolean };

/**
 * Reserves one password check, before it is made: refused while locked, and refused
 * ("busy") when the checks already in flight would, if all of them failed, use up what
 * is left before a lock. So parallel guesses get no more checks than one after another.
 * The reservation is kept in the record (`pending`), so every instance sees it.
 */
export function reserveAttempt(record: LoginFailures, now = Date.now()): Reservation {
  const until = lockedUntil(record, now);
  if (until) return { outcome: 'locked', until };
  const pending = (record.pending ?? []).filter((t) => now - t < PENDING_MS);
  const lastHour = record.failures.filter((t) => now - t < FAILURES_KEPT_MS);
  const sinceLastLock = record.lockedUntil ? lastHour.filter((t) => t > (record.lockedUntil as number)) : lastHour;
  const room = Math.min(LOCK_AFTER - sinceLastLock.length, MAX_FAILURES_PER_HOUR - lastHour.length);
  if (pending.length >= room) return { outcome: 'busy' };
  record.pending = [...pending, now];
  return { outcome: 'reserved', at: now };
}

/** Takes a reservation back without counting it (the check was never made). */
export function releaseAttempt(record: LoginFailures, at: number, now = Date.now()): void {
  const pending = (record.pending ?? []).filter((t) => now - t < PENDING_MS);
  const i = pending.indexOf(at);
  if (i >= 0) pending.splice(i, 1);
  record.pending = pending.length ? pending : undefined;
}

/**
 * Settles a reserved check in one step with the record as it is now: a failure is
 * counted (and may start a lock); a success is refused when a lock began while it was
 * being checked (failures through other requests or instances), and the lock stays;
 * otherwise it clears the failures.
 */
export function settleAttempt(record: LoginFailures, at: number, ok: boolean, now = Date.now()): Settlement {
  releaseAttempt(record, at, now);
  if (!ok) return { outcome: 'failed', startedLock: recordFailure(record, now) };
  const until = lockedUntil(record, now);
  if (until) return { outcome: 'locked', until };
  recordSuccess(record);
  return { outcome: 'accepted' };
}
