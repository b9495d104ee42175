import type { AuthUser, PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { AuthThrottle } from './auth-throttle.js';
import type { RelayAuthorizer } from './authorize.js';
import { verifyPassword } from './password-hash.js';
import { reply } from './smtp-error.js';

export interface AuthAttempt {
  username?: string | null | undefined;
  password?: string | null | undefined;
  method: string;
  ip: string;
  sessionId: string;
}

/**
 * Checks SMTP AUTH credentials against smtp.auth.users, with brute-force limits: a
 * failure is answered 535 5.7.8 only after smtp.auth.failureDelay, and an address with
 * smtp.auth.maxFailures failures within failureWindow gets 454 4.7.0 to every AUTH for
 * smtp.auth.lockout. Logs the username and outcome, never the password.
 */
export class SmtpAuthenticator {
  private readonly throttle: AuthThrottle;

  constructor(
    private readonly config: PosternConfig['smtp']['auth'],
    private readonly authorizer: RelayAuthorizer,
    private readonly log: Logger,
  ) {
    this.throttle = new AuthThrottle({ maxFailures: config.maxFailures, window: config.failureWindow, lockout: config.lockout });
  }

  /** The user the credentials belong to; throws the SMTP reply otherwise. */
  async authenticate(a: AuthAttempt): Promise<AuthUser> {
    const line = { event: EVENTS.smtpAuth, sessionId: a.sessionId, ip: a.ip, username: a.username, method: a.method };
    const lockedUntil = this.throttle.lockedUntil(a.ip);
    if (lockedUntil) {
      this.log.warn({ ...line, ok: false, lockedUntil: new Date(lockedUntil).toISOString() }, 'authentication refused: address locked out after failed attempts');
      throw reply(454, '4.7.0', 'Too many failed authentication attempts from your address, try again later');
    }
    const user = a.username ? this.authorizer.user(a.username) : undefined;
    const ok = Boolean(user && a.password && (await verifyPassword(a.password, user.passwordHash)));
    if (!ok || !user) {
      const { failures, locked } = this.throttle.fail(a.ip);
      this.log.info({ ...line, ok: false, failures }, 'authentication failed');
      if (locked) this.log.warn({ event: EVENTS.smtpAuthLocked, ip: a.ip, failures, lockoutMs: this.config.lockout }, 'client address locked out of SMTP AUTH');
      // Slows guessing on this session; the lockout bounds it across sessions.
      await new Promise((r) => setTimeout(r, this.config.failureDelay));
      throw reply(535, '5.7.8', 'Authentication credentials invalid');
    }
    this.throttle.succeed(a.ip);
    this.log.info({ ...line, ok: true }, 'authenticated');
    return user;
  }
}
