import { describe, expect, it } from 'vitest';
import { AuthThrottle, throttleKey } from '../../src/ingress/auth-throttle.js';

/** Reserves a check at `now` and settles it as a failure. */
function failAt(t: AuthThrottle, key: string, now: number) {
  const r = t.reserve(key, now);
  if (r.outcome !== 'reserved') throw new Error(`not reserved: ${r.outcome}`);
  return t.fail(key, r.at, now);
}

describe('AuthThrottle', () => {
  const limits = { maxFailures: 3, window: 60_000, lockout: 10_000 };

  it('locks a client out after maxFailures within the window, until the lockout ends', () => {
    const t = new AuthThrottle(limits);
    expect(failAt(t, '192.0.2.1', 0)).toEqual({ failures: 1, locked: false });
    expect(failAt(t, '192.0.2.1', 1000)).toEqual({ failures: 2, locked: false });
    expect(t.lockedUntil('192.0.2.1', 1500)).toBeUndefined();
    expect(failAt(t, '192.0.2.1', 2000)).toEqual({ failures: 3, locked: true });
    expect(t.lockedUntil('192.0.2.1', 2001)).toBe(12_000);
    expect(t.reserve('192.0.2.1', 2001)).toEqual({ outcome: 'locked', until: 12_000 });
    // Another client is not affected.
    expect(t.lockedUntil('192.0.2.2', 2001)).toBeUndefined();
    expect(t.lockedUntil('192.0.2.1', 12_000)).toBeUndefined();
    // The failures that caused the lock do not count towards the next one.
    expect(failAt(t, '192.0.2.1', 12_001)).toEqual({ failures: 1, locked: false });
  });

  it('forgets failures older than the window', () => {
    const t = new AuthThrottle(limits);
    failAt(t, '192.0.2.1', 0);
    failAt(t, '192.0.2.1', 1000);
    expect(failAt(t, '192.0.2.1', 60_500)).toEqual({ failures: 2, locked: false });
  });

  it('a success clears the failures of its client', () => {
    const t = new AuthThrottle(limits);
    failAt(t, '192.0.2.1', 0);
    failAt(t, '192.0.2.1', 1);
    const r = t.reserve('192.0.2.1', 2);
    t.succeed('192.0.2.1', (r as { at: number }).at);
    expect(failAt(t, '192.0.2.1', 3)).toEqual({ failures: 1, locked: false });
  });

  it('checks in flight count as failures: no more are reserved than could still fail before a lock', () => {
    const t = new AuthThrottle(limits);
    failAt(t, '192.0.2.1', 0);
    const a = t.reserve('192.0.2.1', 1);
    const b = t.reserve('192.0.2.1', 1);
    expect([a.outcome, b.outcome]).toEqual(['reserved', 'reserved']);
    expect(t.reserve('192.0.2.1', 2)).toEqual({ outcome: 'busy' });
    // A reservation taken back (its check never made) frees its place without counting.
    t.release('192.0.2.1', (a as { at: number }).at);
    expect(t.reserve('192.0.2.1', 3).outcome).toBe('reserved');
  });

  it('counts an IPv6 client by its /64, an IPv4 client by its address', () => {
    expect(throttleKey('2001:db8:1:2::1')).toBe(throttleKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(throttleKey('2001:db8:1:2::1')).not.toBe(throttleKey('2001:db8:1:3::1'));
    expect(throttleKey('192.0.2.1')).toBe('192.0.2.1');
    expect(throttleKey('192.0.2.1')).not.toBe(throttleKey('192.0.2.2'));
  });
});
