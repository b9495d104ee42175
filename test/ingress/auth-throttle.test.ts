import { describe, expect, it } from 'vitest';
import { AuthThrottle } from '../../src/ingress/auth-throttle.js';

describe('AuthThrottle', () => {
  const limits = { maxFailures: 3, window: 60_000, lockout: 10_000 };

  it('locks an address out after maxFailures within the window, until the lockout ends', () => {
    const t = new AuthThrottle(limits);
    expect(t.fail('192.0.2.1', 0)).toEqual({ failures: 1, locked: false });
    expect(t.fail('192.0.2.1', 1000)).toEqual({ failures: 2, locked: false });
    expect(t.lockedUntil('192.0.2.1', 1500)).toBeUndefined();
    expect(t.fail('192.0.2.1', 2000)).toEqual({ failures: 3, locked: true });
    expect(t.lockedUntil('192.0.2.1', 2001)).toBe(12_000);
    // Another address is not affected.
    expect(t.lockedUntil('192.0.2.2', 2001)).toBeUndefined();
    expect(t.lockedUntil('192.0.2.1', 12_000)).toBeUndefined();
    // The failures that caused the lock do not count towards the next one.
    expect(t.fail('192.0.2.1', 12_001)).toEqual({ failures: 1, locked: false });
  });

  it('forgets failures older than the window', () => {
    const t = new AuthThrottle(limits);
    t.fail('192.0.2.1', 0);
    t.fail('192.0.2.1', 1000);
    expect(t.fail('192.0.2.1', 60_500)).toEqual({ failures: 2, locked: false });
  });

  it('a success clears the failures of its address', () => {
    const t = new AuthThrottle(limits);
    t.fail('192.0.2.1', 0);
    t.fail('192.0.2.1', 1);
    t.succeed('192.0.2.1');
    expect(t.fail('192.0.2.1', 2)).toEqual({ failures: 1, locked: false });
  });
});
