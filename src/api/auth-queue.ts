/** Thrown when the credential checks are all taken and too many wait already. */
export class AuthBusyError extends Error {
  constructor() {
    super('too many credential checks waiting; try again in a moment');
  }
}

export interface CheckQueueLimits {
  /** Checks running at once (scrypt takes a noticeable slice of CPU and memory each). */
  concurrent: number;
  /** Checks waiting, in all. */
  waiting: number;
  /** Checks waiting from one client address. */
  waitingPerIp: number;
}

interface Waiter {
  ip: string;
  start: () => void;
}

/**
 * Runs credential checks a few at a time, first come first served, with a bounded queue:
 * a flood of wrong credentials gets "busy" answers at once instead of a queue that grows
 * without bound, and one address can hold only a few places in it, so checks from other
 * addresses still get their turn. (Credentials that passed recently are answered from
 * the cache and never queue.)
 */
export class CheckQueue {
  private active = 0;
  private readonly waiting: Waiter[] = [];
  private readonly perIp = new Map<string, number>();

  constructor(private readonly limits: CheckQueueLimits) {}

  /** Runs `check` when a slot is free; throws AuthBusyError when it cannot even wait. */
  async run<T>(ip: string, check: () => Promise<T>): Promise<T> {
    if (this.active >= this.limits.concurrent) {
      if (this.waiting.length >= this.limits.waiting || (this.perIp.get(ip) ?? 0) >= this.limits.waitingPerIp) throw new AuthBusyError();
      this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
      // A finishing check hands its slot straight to the next one waiting.
      await new Promise<void>((start) => this.waiting.push({ ip, start }));
    } else this.active++;
    try {
      return await check();
    } finally {
      const next = this.waiting.shift();
      if (next) {
        const n = (this.perIp.get(next.ip) ?? 1) - 1;
        if (n > 0) this.perIp.set(next.ip, n);
        else this.perIp.delete(next.ip);
        next.start();
      } else this.active--;
    }
  }
}
