import { EVENTS, type Logger } from '../events/logger.js';
import type { Expiry } from '../keys/identities.js';

const DAY = 86_400_000;
/** How far ahead an expiry is announced: time to renew and deploy a certificate. */
const WARN_DAYS = 30;

/**
 * Warns ahead of the expiry of the organisation's signing identities and escrow keys:
 * once at start (createProtector), then daily on a timer the gateway starts (main.ts),
 * whether or not any mail is encrypted. What it says once expired: identities no longer
 * sign (protector.ts leaves them out rather than fail every message); escrow keys are
 * still encrypted to.
 */
export class ExpiryWatch {
  constructor(
    private readonly expiries: Expiry[],
    private readonly log: Logger,
  ) {}

  check(now = Date.now()): void {
    for (const e of this.expiries) {
      const days = Math.floor((e.expiresAt - now) / DAY);
      const expiresAt = new Date(e.expiresAt).toISOString();
      if (e.expiresAt <= now) this.log.warn({ event: EVENTS.keyExpiring, setting: e.setting, expiresAt, expired: true }, `${e.setting} expired on ${expiresAt}; replace it`);
      else if (days < WARN_DAYS) this.log.warn({ event: EVENTS.keyExpiring, setting: e.setting, expiresAt, daysLeft: days }, `${e.setting} expires in ${days} day(s), on ${expiresAt}; renew it`);
    }
  }

  /**
   * Checks every `every` ms (a day) from now on. The timer does not keep the process
   * alive; clear it with clearInterval when the gateway stops. `clock` is for tests.
   */
  start(every = DAY, clock: () => number = Date.now): NodeJS.Timeout {
    return setInterval(() => this.check(clock()), every).unref();
  }
}
