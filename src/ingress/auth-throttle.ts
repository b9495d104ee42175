/** Past this many client addresses, those with nothing left to remember are dropped. */
const PRUNE_AT = 10_000;

export interface AuthThrottleLimits {
  /** Failed AUTH attempts from one address within `window` that lock it out. */
  maxFailures: number;
  window: number;
  /** How long a locked-out address gets 454 to every AUTH, its password not even checked. */
  lockout: number;
}

interface ClientFailures {
  failures: number[];
  lockedUntil: number;
}

/**
 * Failed SMTP AUTH attempts per client address, in this process's memory: after
 * `maxFailures` within `window` the address is locked out for `lockout`. A lock always
 * ends by itself, and a locked address costs no scrypt work, so guessing passwords is
 * slow and cannot be turned into CPU load. A success clears the address's failures.
 */
export class AuthThrottle {
  private readonly clients = new Map<string, ClientFailures>();

  constructor(private readonly limits: AuthThrottleLimits) {}

  /** When the address is locked out: the time the lock ends. */
  lockedUntil(ip: string, now = Date.now()): number | undefined {
    const r = this.clients.get(ip);
    return r && r.lockedUntil > now ? r.lockedUntil : undefined;
  }

  /** Records a failure; `locked` is true when this one started a lockout. */
  fail(ip: string, now = Date.now()): { failures: number; locked: boolean } {
    if (this.clients.size >= PRUNE_AT) this.prune(now);
    const r = this.clients.get(ip) ?? { failures: [], lockedUntil: 0 };
    r.failures = [...r.failures.filter((t) => now - t < this.limits.window), now];
    this.clients.set(ip, r);
    const failures = r.failures.length;
    if (failures < this.limits.maxFailures) return { failures, locked: false };
    // The failures that caused this lock do not count towards the next one.
    r.failures = [];
    r.lockedUntil = now + this.limits.lockout;
    return { failures, locked: true };
  }

  succeed(ip: string): void {
    this.clients.delete(ip);
  }

  private prune(now: number): void {
    for (const [ip, r] of this.clients) {
      if (r.lockedUntil <= now && r.failures.every((t) => now - t >= this.limits.window)) this.clients.delete(ip);
    }
  }
}
