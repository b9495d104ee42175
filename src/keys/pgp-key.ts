import { enums, readKey, type PublicKey } from 'openpgp';

export interface PgpKeyInfo {
  fingerprint: string;
  emails: string[];
  algorithm: string;
  bits?: number | undefined;
  expiresAt?: number | undefined;
  /** Why the key must not be used, or undefined when it is usable for encryption. */
  unusable?: string | undefined;
  armored: string;
}

/**
 * Reads an OpenPGP public key and decides whether Postern may encrypt to it: not
 * revoked, not expired, an encryption-capable (sub)key, RSA at least 2048 bits, and no
 * SHA-1 (or weaker) self-signatures.
 */
export async function inspectPgpKey(armored: string, now = new Date()): Promise<PgpKeyInfo> {
  const key = (await readKey({ armoredKey: armored })) as PublicKey;
  const info = key.getAlgorithmInfo();
  const expiry = await key.getExpirationTime().catch(() => null);
  const expiresAt = expiry instanceof Date ? expiry.getTime() : undefined;
  const emails = key.users.map((u) => u.userID?.email?.toLowerCase()).filter((e): e is string => Boolean(e));
  const base = { fingerprint: key.getFingerprint().toUpperCase(), emails, algorithm: String(info.algorithm), bits: info.bits, expiresAt, armored: key.armor() };
  const weakHashes = new Set<number>([enums.hash.md5, enums.hash.sha1, enums.hash.ripemd]);
  if (await key.isRevoked(undefined, undefined, now).catch(() => false)) return { ...base, unusable: 'revoked' };
  if (expiresAt !== undefined && expiresAt <= now.getTime()) return { ...base, unusable: `expired on ${new Date(expiresAt).toISOString()}` };
  if (/rsa/i.test(String(info.algorithm)) && (info.bits ?? 0) < 2048) return { ...base, unusable: `RSA key of ${info.bits} bits (at least 2048 required)` };
  const selfSigs = key.users.flatMap((u) => u.selfCertifications);
  if (selfSigs.some((s) => weakHashes.has(s.hashAlgorithm as number))) return { ...base, unusable: 'self-signed with SHA-1 or a weaker hash' };
  try {
    await key.getEncryptionKey(undefined, now);
  } catch (err) {
    return { ...base, unusable: `no usable encryption key (${(err as Error).message})` };
  }
  return base;
}
