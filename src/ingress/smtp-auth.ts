import { AuthBusyError, CheckQueue } from '../api/auth-queue.js';
import type { AuthUser, PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { AuthThrottle, throttleKey } from './auth-throttle.js';
import type { RelayAuthorizer } from './authorize.js';
import { unmatchableHash, verifyPassword } from './password-hash.js';
import { reply } from './smtp-error.js';

export interface AuthAttempt {
  /** The authentication identity (PLAIN's authcid, LOGIN's username). */
  username?: string | null | undefined;
  /** PLAIN's authorization identity: empty, or the same as `username` (no acting as another user). */
  authzid?: string | null | undefined;
  password?: string | null | undefined;
  method: string;
  ip: string;
  sessionId: string;
}

/**
 * Password checks running at once, in the whole process, and how many may wait. Each
 * scrypt check (N=2^17) holds one libuv thread and 128 MB for ~0.4 s, and the spool's
 * writes and fsyncs need those threads too (16 under `postern`, UV_THREADPOOL_SIZE; 4
 * by default): with two at most, guesses can never take them all (the portal's and the
 * admin API's checks are capped at two each, likewise). Attempts beyond the queue get 454 at once. One client (throttleKey) holds at most a
 * few places in the queue, so others still get their turn.
 */
const CHECKS = { concurrent: 2, waiting: 16, waitingPerIp: 4 };

/**
 * Checks SMTP AUTH credentials against smtp.auth.users, with brute-force limits: a
 * failure is answered 535 5.7.8 only after smtp.auth.failureDelay, and a client with
 * smtp.auth.maxFailures failures (checks in flight count as failures) within
 * failureWindow gets 454 4.7.0 to every AUTH for smtp.auth.lockout. An unknown name is
 * checked against a dummy hash with the users' cost, so the time of a refusal does not
 * tell which names exist. Logs the username only when it is a configured user (an
 * unknown one may be the password, typed in the wrong field), never the password.
 */
export class SmtpAuthenticator {
  private readonly throttle: AuthThrottle;
  private readonly checks = new CheckQueue(CHECKS);
  private readonly dummyHash: string;

  constructor(
    private readonly config: PosternConfig['smtp']['auth'],
    private readonly authorizer: RelayAuthorizer,
    private readonly log: Logger,
  ) {
    this.throttle = new AuthThrottle({ maxFailures: config.maxFailures, window: config.failureWindow, lockout: config.lockout });
    // hash-password gives every user the same cost: the first one's stands for all.
    this.dummyHash = unmatchableHash(config.users[0]?.passwordHash);
  }

  /** The user the credentials belong to; throws the SMTP reply otherwise. */
  async authenticate(a: AuthAttempt): Promise<AuthUser> {
    const user = a.username ? this.authorizer.user(a.username) : undefined;
    const who = user ? { username: user.username } : { username: '(unknown)', usernameLength: (a.username ?? '').length };
    const line = { event: EVENTS.smtpAuth, sessionId: a.sessionId, ip: a.ip, ...who, method: a.method };

    // RFC 4616 §2: the authentication identity may not be empty, and acting as another
    // user (an authorization identity that differs) is not something Postern grants.
    const identityRefused = !a.username ? 'empty-authcid' : a.authzid && a.authzid !== a.username ? 'authzid-differs' : undefined;
    if (identityRefused) {
      this.log.info({ ...line, ok: false, reason: identityRefused }, 'authentication refused: identity not accepted');
      return this.refuse();
    }

    const key = throttleKey(a.ip);
    const reservation = this.throttle.reserve(key);
    if (reservation.outcome === 'locked') {
      this.log.warn({ ...line, ok: false, lockedUntil: new Date(reservation.until).toISOString() }, 'authentication refused: address locked out after failed attempts');
      throw reply(454, '4.7.0', 'Too many failed authentication attempts from your address, try again later');
    }
    if (reservation.outcome === 'busy') {
      this.log.warn({ ...line, ok: false, reason: 'checks-pending' }, 'authentication refused: the address has as many checks under way as it may still fail');
      throw reply(454, '4.7.0', 'Too many authentication attempts from your address, try again later');
    }

    let matched: boolean;
    try {
      matched = await this.checks.run(key, () => verifyPassword(a.password ?? '', user?.passwordHash ?? this.dummyHash));
    } catch (err) {
      this.throttle.release(key, reservation.at);
      if (!(err instanceof AuthBusyError)) throw err;
      this.log.warn({ ...line, ok: false, reason: 'checks-busy' }, 'authentication refused: too many password checks waiting');
      throw reply(454, '4.7.0', 'Too many authentication attempts in progress, try again later');
    }

    if (!matched || !user || !a.password) {
      const { failures, locked } = this.throttle.fail(key, reservation.at);
      this.log.info({ ...line, ok: false, failures }, 'authentication failed');
      if (locked) this.log.warn({ event: EVENTS.smtpAuthLocked, ip: a.ip, failures, lockoutMs: this.config.lockout }, 'client address locked out of SMTP AUTH');
      return this.refuse();
    }
    this.throttle.succeed(key, reservation.at);
    this.log.info({ ...line, ok: true }, 'authenticated');
    return user;
  }

  /** 535 after failureDelay, which slows guessing on this session; the lockout bounds it across sessions. */
  private async refuse(): Promise<never> {
    await new Promise((r) => setTimeout(r, this.config.failureDelay));
    throw reply(535, '5.7.8', 'Authentication credentials invalid');
  }
}
