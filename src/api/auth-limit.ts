/** Addresses remembered at most: a flood from many addresses cannot grow this without bound. */
const MAX_ADDRESSES = 10_000;

export interface FailureLimit {
  /** Failed authentications from one address within `windowMs` before it gets 429. */
  failures: number;
  windowMs: number;
}

/**
 * Failed admin authentications per client address. Once an address has failed
 * `failures` times within the window it is refused (429) without a credential check
 * until its oldest failure leaves the window: guessing keys costs the guesser time, and
 * the scrypt checks it would have cost go to others. A success does not clear the count
 * (a caller holding one valid key could otherwise guess at others between its calls);
 * failures simply age out. Calls without any credentials are not failures (a client's
 * first try before the Basic challenge) and cost no check.
 */
export class FailureLimiter {
  private readonly byIp = new Map<string, number[]>();

  constructor(private readonly limit: FailureLimit) {}

  /** Milliseconds until `ip` may try again, or 0 when it may now. */
  blockedFor(ip: string, now = Date.now()): number {
    const times = this.recent(ip, now);
    if (!times || times.length < this.limit.failures) return 0;
    return (times[times.length - this.limit.failures] as number) + this.limit.windowMs - now;
  }

  failed(ip: string, now = Date.now()): void {
    const times = this.recent(ip, now) ?? [];
    times.push(now);
    // Only the last `failures` matter for blockedFor.
    if (times.length > this.limit.failures) times.splice(0, times.length - this.limit.failures);
    this.byIp.delete(ip); // re-inserted last: the map's order is least recently failed first
    if (this.byIp.size >= MAX_ADDRESSES) this.byIp.delete(this.byIp.keys().next().value as string);
    this.byIp.set(ip, times);
  }

  private recent(ip: string, now: number): number[] | undefined {
    const times = this.byIp.get(ip);
    if (!times) return undefined;
    while (times.length && (times[0] as number) <= now - this.limit.windowMs) times.shift();
    if (!times.length) this.byIp.delete(ip);
    return times;
  }
}
