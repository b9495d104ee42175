import { isIPv6 } from 'node:net';
import { parseCidr } from './cidr.js';

/** Past this many clients, those with nothing left to remember are dropped. */
const PRUNE_AT = 10_000;
/**
 * How long a reserved check counts when it is never settled (a bug, or a check that
 * hangs): far longer than a check may take (a short wait in the queue, then scrypt).
 */
const PENDING_MS = 60_000;

export interface AuthThrottleLimits {
  /** Failed AUTH attempts from one client within `window` that lock it out. */
  maxFailures: number;
  window: number;
  /** How long a locked-out client gets 454 to every AUTH, its password not even checked. */
  lockout: number;
}

interface ClientFailures {
  failures: number[];
  /** Checks reserved and not yet settled (their start times). */
  pending: number[];
  lockedUntil: number;
}

export type Reservation = { outcome: 'locked'; until: number } | { outcome: 'busy' } | { outcome: 'reserved'; at: number };

/**
 * Who the limits count against: the address, or for IPv6 its /64, which one host or
 * site usually holds whole and could otherwise hop through without end.
 */
export function throttleKey(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const net = parseCidr(`${ip}/64`);
  return net ? `${net.network.toString(16)}/64` : ip;
}

/**
 * Failed SMTP AUTH attempts per client (throttleKey), in this process's memory: after
 * `maxFailures` within `window` the client is locked out for `lockout`. A check is
 * reserved before it is made (reserve), so attempts running in parallel get no more
 * checks than attempts one after another: with `maxFailures` checks already in flight
 * or failed, the next one is refused ("busy") until they settle. A lock always ends by
 * itself, and a locked client costs no scrypt work. A success clears the client's failures.
 */
export class AuthThrottle {
  private readonly clients = new Map<string, ClientFailures>();

  constructor(private readonly limits: AuthThrottleLimits) {}

  /** When the client is locked out: the time the lock ends. */
  lockedUntil(key: string, now = Date.now()): number | undefined {
    const r = this.clients.get(key);
    return r && r.lockedUntil > now ? r.lockedUntil : undefined;
  }

  /** Reserves one password check, before it is made; settle it with fail/succeed/release. */
  reserve(key: string, now = Date.now()): Reservation {
    const until = this.lockedUntil(key, now);
    if (until) return { outcome: 'locked', until };
    if (this.clients.size >= PRUNE_AT) this.prune(now);
    const r = this.record(key, now);
    if (r.pending.length + r.failures.length >= this.limits.maxFailures) return { outcome: 'busy' };
    r.pending.push(now);
    return { outcome: 'reserved', at: now };
  }

  /** Takes a reservation back without counting it (the check was never made). */
  release(key: string, at: number): void {
    const r = this.clients.get(key);
    if (!r) return;
    const i = r.pending.indexOf(at);
    if (i >= 0) r.pending.splice(i, 1);
  }

  /** Settles a reservation as a failure; `locked` is true when it started a lockout. */
  fail(key: string, at: number, now = Date.now()): { failures: number; locked: boolean } {
    this.release(key, at);
    const r = this.record(key, now);
    r.failures.push(now);
    const failures = r.failures.length;
    if (failures < this.limits.maxFailures) return { failures, locked: false };
    // The failures that caused this lock do not count towards the next one.
    r.failures = [];
    r.lockedUntil = now + this.limits.lockout;
    return { failures, locked: true };
  }

  /** Settles a reservation as a success: the client's failures are forgotten. */
  succeed(key: string, at: number): void {
    this.release(key, at);
    const r = this.clients.get(key);
    if (!r) return;
    r.failures = [];
    if (!r.pending.length && !this.lockedUntil(key)) this.clients.delete(key);
  }

  /** The client's record with failures outside the window and stale reservations dropped. */
  private record(key: string, now: number): ClientFailures {
    const r = this.clients.get(key) ?? { failures: [], pending: [], lockedUntil: 0 };
    r.failures = r.failures.filter((t) => now - t < this.limits.window);
    r.pending = r.pending.filter((t) => now - t < PENDING_MS);
    this.clients.set(key, r);
    return r;
  }

  private prune(now: number): void {
    for (const [key, r] of this.clients) {
      const idle = r.pending.every((t) => now - t >= PENDING_MS) && r.failures.every((t) => now - t >= this.limits.window);
      if (r.lockedUntil <= now && idle) this.clients.delete(key);
    }
  }
}
