import { hashPassword, unmatchableHash, verifyPassword } from '../../ingress/password-hash.js';
import { Gate } from './gate.js';

export interface HashingLimits {
  /** Hashes and checks running at once (scrypt N=2^17 takes ~128 MB each). */
  concurrency: number;
  /** How long one waits for its turn before the visitor gets 503 "busy, try again". */
  maxWaitMs: number;
}

export const DEFAULT_HASHING: HashingLimits = { concurrency: 2, maxWaitMs: 5000 };

/**
 * Portal password hashing and checks. They share one gate, so a burst of logins cannot
 * run dozens of scrypt computations at once and exhaust memory: a few run, the others
 * wait briefly, then are refused as busy (BusyError) — known and unknown addresses
 * alike. A login for an address without an account is checked against a dummy hash
 * with the parameters of real accounts (random salt and key, see unmatchableHash), so it
 * costs the same and its timing does not tell which addresses have accounts.
 */
export class PortalPasswords {
  private constructor(
    private readonly dummyHash: string,
    private readonly gate: Gate,
  ) {}

  static async create(limits: HashingLimits = DEFAULT_HASHING): Promise<PortalPasswords> {
    const gate = new Gate(limits.concurrency, limits.maxWaitMs, limits.concurrency * 16);
    return new PortalPasswords(unmatchableHash(), gate);
  }

  hash(password: string): Promise<string> {
    return this.gate.run(() => hashPassword(password));
  }

  /** Without a stored hash (no account), the dummy is checked and the answer is no. */
  async verify(password: string, stored: string | undefined): Promise<boolean> {
    const ok = await this.gate.run(() => verifyPassword(password, stored ?? this.dummyHash));
    return ok && stored !== undefined;
  }
}
