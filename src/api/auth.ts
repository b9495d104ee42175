import { createHash } from 'node:crypto';
import type { PosternConfig } from '../config/schema.js';
import { unmatchableHash, verifyPassword } from '../ingress/password-hash.js';
import { CheckQueue } from './auth-queue.js';

export type Role = PosternConfig['admin']['apiKeys'][number]['role'];

/** Each role may do what the ones before it may. */
export const ROLES: readonly Role[] = ['read-only', 'operator', 'admin'];
export const roleAllows = (has: Role, needs: Role) => ROLES.indexOf(has) >= ROLES.indexOf(needs);

export interface Principal {
  name: string;
  role: Role;
  via: 'api-key' | 'basic';
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The least role a route needs; routes without one (health, the document) are open. */
    role?: Role;
  }
  interface FastifyRequest {
    principal?: Principal | undefined;
  }
}

/** Remembered successes: scrypt takes a noticeable slice of CPU and memory per check. */
const CACHE_MS = 5 * 60_000;
const CACHE_MAX = 1000;
/**
 * At most two scrypt checks at once (a flood of wrong credentials cannot exhaust memory),
 * 32 waiting, 4 of them from one address: beyond that a caller is told to come back (503).
 */
const CHECKS = { concurrent: 2, waiting: 32, waitingPerIp: 4 };

const digest = (text: string) => createHash('sha256').update(text).digest('hex');

export type Credentials = { 'x-api-key'?: string | string[] | undefined; authorization?: string | undefined };

export type PasswordVerifier = (secret: string, hash: string) => Promise<boolean>;

/**
 * Checks X-API-Key and HTTP Basic credentials against the scrypt hashes in admin.apiKeys
 * and admin.users. Only a digest of a credential that passed is kept in memory, for a
 * few minutes, so a busy client does not pay for scrypt on every call.
 */
export class Authenticator {
  private readonly cache = new Map<string, { principal: Principal; until: number }>();
  private readonly checks = new CheckQueue(CHECKS);
  private readonly dummy: string;

  constructor(
    private readonly admin: PosternConfig['admin'],
    /** The scrypt check (a parameter so tests can see which hash each attempt is checked against). */
    private readonly verifier: PasswordVerifier = verifyPassword,
  ) {
    // An unknown name is checked against a hash with the users' cost (the first one's;
    // hash-password gives them all the same), so a 401's timing does not tell which names exist.
    this.dummy = unmatchableHash(admin.users[0]?.passwordHash);
  }

  /** Whether the request carries credentials at all (only those can fail to authenticate). */
  static presented(headers: Credentials): boolean {
    return (typeof headers['x-api-key'] === 'string' && headers['x-api-key'] !== '') || /^Basic\s/i.test(headers.authorization ?? '');
  }

  /**
   * The principal, undefined for wrong or missing credentials. `ip` is the caller's
   * address: it holds only a few places in the queue of checks (AuthBusyError beyond).
   */
  async authenticate(headers: Credentials, ip = 'local'): Promise<Principal | undefined> {
    const key = headers['x-api-key'];
    if (typeof key === 'string' && key) {
      return this.cached(`k:${key}`, async () => {
        for (const k of this.admin.apiKeys) if (await this.verify(ip, key, k.hash)) return { name: k.name, role: k.role, via: 'api-key' };
        return undefined;
      });
    }
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(headers.authorization ?? '');
    if (!basic) return undefined;
    const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 1) return undefined;
    const name = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const user = this.admin.users.find((u) => u.name === name);
    // An unknown name costs one check too (against the dummy), queued like any other.
    if (!user) {
      await this.verify(ip, password, this.dummy);
      return undefined;
    }
    return this.cached(`b:${decoded}`, async () => ((await this.verify(ip, password, user.passwordHash)) ? { name: user.name, role: user.role, via: 'basic' } : undefined));
  }

  private async cached(credential: string, check: () => Promise<Principal | undefined>): Promise<Principal | undefined> {
    const hex = digest(credential);
    const hit = this.cache.get(hex);
    if (hit && hit.until > Date.now()) return hit.principal;
    this.cache.delete(hex);
    const principal = await check();
    if (principal) {
      if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(hex, { principal, until: Date.now() + CACHE_MS });
    }
    return principal;
  }

  private verify(ip: string, secret: string, hash: string): Promise<boolean> {
    return this.checks.run(ip, () => this.verifier(secret, hash));
  }
}
