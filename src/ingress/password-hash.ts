import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashes for SMTP AUTH users: "scrypt$N$r$p$salt$hash" (base64 salt and hash).
 * Defaults follow OWASP's scrypt guidance (N=2^17, r=8, p=1).
 */
const DEFAULTS = { N: 2 ** 17, r: 8, p: 1 };
const KEY_LENGTH = 32;

function scrypt(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, KEY_LENGTH, { ...opts, maxmem: 256 * (opts.N ?? 1) * (opts.r ?? 8) + 32 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string, params = DEFAULTS): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, params);
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/**
 * A hash no password matches, with the cost (N, r, p) of `like` (a stored hash: the
 * accounts' own) or, without one, of hashPassword(): checking a password against it
 * costs what checking a real hash costs, so the time of a refusal does not tell whether
 * the name exists. Its salt and key are random: nothing is hashed to make it (a real
 * scrypt would take ~128 MB and most of a second).
 */
export function unmatchableHash(like?: string): string {
  const params = (like !== undefined && parseParams(like.split('$'))) || DEFAULTS;
  return ['scrypt', params.N, params.r, params.p, randomBytes(16).toString('base64'), randomBytes(KEY_LENGTH).toString('base64')].join('$');
}

export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const params = parseParams(parts);
  if (!params) return false;
  try {
    const key = await scrypt(password, params.salt, params);
    return timingSafeEqual(key, params.expected);
  } catch {
    return false; // parameters scrypt refuses (e.g. N not a power of two)
  }
}

/** A well-formed hash string: power-of-two N, positive integer r and p, salt, 32-byte key. */
export function isPasswordHash(encoded: string): boolean {
  return parseParams(encoded.split('$')) !== undefined;
}

function parseParams(parts: string[]): { N: number; r: number; p: number; salt: Buffer; expected: Buffer } | undefined {
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4] as string, 'base64');
  const expected = Buffer.from(parts[5] as string, 'base64');
  const integer = (n: number) => Number.isInteger(n) && n > 0;
  if (!integer(N) || N < 2 || (N & (N - 1)) !== 0 || !integer(r) || !integer(p)) return undefined;
  if (!salt.length || expected.length !== KEY_LENGTH) return undefined;
  return { N, r, p, salt, expected };
}
