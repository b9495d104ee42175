import { randomBytes } from 'node:crypto';
import { hashPassword, verifyPassword } from '../../ingress/password-hash.js';

/**
 * Portal password hashing and checks. A login for an address without an account is
 * checked against a dummy hash made at start with the same hasher and parameters as
 * real accounts, so it costs the same and its timing does not tell which addresses
 * have accounts.
 */
export class PortalPasswords {
  private constructor(private readonly dummyHash: string) {}

  static async create(): Promise<PortalPasswords> {
    return new PortalPasswords(await hashPassword(randomBytes(18).toString('base64')));
  }

  hash(password: string): Promise<string> {
    return hashPassword(password);
  }

  /** Without a stored hash (no account), the dummy is checked and the answer is no. */
  async verify(password: string, stored: string | undefined): Promise<boolean> {
    const ok = await verifyPassword(password, stored ?? this.dummyHash);
    return ok && stored !== undefined;
  }
}
