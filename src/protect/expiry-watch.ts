import { EVENTS, type Logger } from '../events/logger.js';
import type { Expiry } from '../keys/identities.js';

const DAY = 86_400_000;
/** How far ahead an expiry is announced: time to renew and deploy a certificate. */
const WARN_DAYS = 30;

/**
 * Warns ahead of the expiry of the organisation's signing identities and escrow keys:
 * at start, then at most once a day as messages are protected (no timer of its own).
 * What it says once expired: identities no longer sign (protector.ts leaves them out
 * rather than fail every message); escrow keys are still encrypted to.
 */
export class ExpiryWatch {
  private checkedAt = -Infinity;

  constructor(
    private readonly expiries: Expiry[],
    private readonly log: Logger,
  ) {}

  check(now = Date.now()): void {
    if (now - this.checkedAt < DAY) return;
    this.checkedAt = now;
    for (const e of this.expiries) {
      const days = Math.floor((e.expiresAt - now) / DAY);
      const expiresAt = new Date(e.expiresAt).toISOString();
      if (e.expiresAt <= now) this.log.warn({ event: EVENTS.keyExpiring, setting: e.setting, expiresAt, expired: true }, `${e.setting} expired on ${expiresAt}; replace it`);
      else if (days < WARN_DAYS) this.log.warn({ event: EVENTS.keyExpiring, setting: e.setting, expiresAt, daysLeft: days }, `${e.setting} expires in ${days} day(s), on ${expiresAt}; renew it`);
    }
  }
}
