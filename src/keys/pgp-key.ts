import { enums, readKey, type Key, type SignaturePacket, type Subkey } from 'openpgp';
import { comparableAddress } from '../common/domain-name.js';

export interface PgpKeyInfo {
  fingerprint: string;
  /** The certified user IDs' addresses in the comparable form (local part lower-cased, domain in ASCII). */
  emails: string[];
  algorithm: string;
  bits?: number | undefined;
  /** When it stops being usable: the primary key's or the encryption subkey's expiry, the earlier. */
  expiresAt?: number | undefined;
  /** Why the key must not be used, or undefined when it is usable for encryption. */
  unusable?: string | undefined;
  armored: string;
}

/** Hashes too weak for a self-signature Postern relies on (RFC 9580 §9.5 deprecates them). */
const WEAK_HASHES = new Set<number>([enums.hash.md5, enums.hash.sha1, enums.hash.ripemd]);
/** Algorithms whose strength is their modulus size: at least 2048 bits. */
const SIZED = /^(rsa|dsa|elgamal)/i;

/**
 * Reads an OpenPGP public key and decides whether Postern may encrypt to it: not
 * revoked, not expired, an encryption-capable (sub)key, RSA/DSA/ElGamal of at least
 * 2048 bits (primary and encryption subkey), and the signatures that make the key
 * valid — the primary user's current self-signature and the encryption subkey's
 * current binding signature — not made with SHA-1 or weaker. Older, superseded
 * SHA-1 self-signatures do not count: the newest one is what OpenPGP implementations use.
 */
export async function inspectPgpKey(armored: string, now = new Date()): Promise<PgpKeyInfo> {
  const key = await readKey({ armoredKey: armored });
  const info = key.getAlgorithmInfo();
  const primaryExpiresAt = epochMs(await key.getExpirationTime().catch(() => null));
  const emails = await certifiedEmails(key, now);
  const base = { fingerprint: key.getFingerprint().toUpperCase(), emails, algorithm: String(info.algorithm), bits: info.bits, armored: key.armor() };
  const unusable = await whyUnusable(key, primaryExpiresAt, now);
  if (unusable) return { ...base, expiresAt: primaryExpiresAt, unusable };
  return { ...base, expiresAt: earliest(primaryExpiresAt, await encryptionKeyExpiry(key, now)) };
}

/**
 * The addresses of the user IDs the key holder still vouches for at `now`: each with a
 * valid self-certification that is neither revoked nor expired (openpgp's User.verify).
 * A revoked user ID ("I no longer use this address") or one someone else appended
 * without the key's signature must not make the key an address's key.
 */
async function certifiedEmails(key: Key, now: Date): Promise<string[]> {
  const emails: string[] = [];
  for (const user of key.users) {
    const given = user.userID?.email;
    const email = given && comparableAddress(given);
    if (email && (await user.verify(now).then(() => true, () => false))) emails.push(email);
  }
  return [...new Set(emails)];
}

/**
 * When the encryption subkey that would be used now expires: the key stops being usable
 * then even while the primary key lives on, so whatever was decided about it (the
 * discovery cache, the inspection reused per record) must not outlast it.
 */
async function encryptionKeyExpiry(key: Key, now: Date): Promise<number | undefined> {
  const enc = await key.getEncryptionKey(undefined, now).catch(() => undefined);
  if (!enc || enc === key) return undefined;
  return epochMs(await (enc as Subkey).getExpirationTime(now).catch(() => null));
}

/** A Date as ms; Infinity (never expires) and null (invalid) as undefined. */
const epochMs = (d: Date | number | null): number | undefined => (d instanceof Date ? d.getTime() : undefined);

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

async function whyUnusable(key: Key, expiresAt: number | undefined, now: Date): Promise<string | undefined> {
  if (await key.isRevoked(undefined, undefined, now).catch(() => false)) return 'revoked';
  if (expiresAt !== undefined && expiresAt <= now.getTime()) return `expired on ${new Date(expiresAt).toISOString()}`;
  const weakPrimary = tooSmall(key.getAlgorithmInfo());
  if (weakPrimary) return `primary key: ${weakPrimary}`;
  const primaryUser = await key.getPrimaryUser(now).catch((err: Error) => err);
  if (primaryUser instanceof Error) return `no valid user ID (${primaryUser.message})`;
  if (weakHash(primaryUser.selfCertification)) return `self-signed with ${hashName(primaryUser.selfCertification)} (SHA-1 and weaker are refused)`;
  let enc: Key | Subkey;
  try {
    enc = await key.getEncryptionKey(undefined, now);
  } catch (err) {
    return `no usable encryption key (${(err as Error).message})`;
  }
  if (enc === key) return undefined;
  const weakSub = tooSmall(enc.getAlgorithmInfo());
  if (weakSub) return `encryption subkey: ${weakSub}`;
  const binding = newest((enc as Subkey).bindingSignatures);
  if (binding && weakHash(binding)) return `encryption subkey bound with ${hashName(binding)} (SHA-1 and weaker are refused)`;
  return undefined;
}

function tooSmall(info: { algorithm: unknown; bits?: number | undefined }): string | undefined {
  const name = String(info.algorithm);
  if (SIZED.test(name) && (info.bits ?? 0) < 2048) return `${name} key of ${info.bits ?? 0} bits (at least 2048 required)`;
  return undefined;
}

function newest(sigs: SignaturePacket[]): SignaturePacket | undefined {
  return [...sigs].sort((a, b) => (a.created?.getTime() ?? 0) - (b.created?.getTime() ?? 0)).at(-1);
}

function weakHash(sig: SignaturePacket): boolean {
  return WEAK_HASHES.has(sig.hashAlgorithm as number);
}

function hashName(sig: SignaturePacket): string {
  const name = Object.entries(enums.hash).find(([, v]) => v === sig.hashAlgorithm)?.[0];
  return (name ?? `hash ${String(sig.hashAlgorithm)}`).toUpperCase().replace(/^SHA(\d)/, 'SHA-$1');
}
