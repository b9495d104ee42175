import type { PublicKey, Subkey } from 'openpgp';

/**
 * The OpenPGP escrow key as the protector holds it: the key, a moment it was usable for
 * encryption (its check at start), and when it stops being usable (ms; Infinity: never).
 */
export interface PgpEscrow {
  key: PublicKey;
  usableAt: Date;
  expiresAt: number;
}

/**
 * When `key` stops being usable for encryption, read as of `usableAt`: its own expiry or
 * that of the encryption subkey, whichever comes first (a subkey often expires before the
 * primary key). Rejects when the key cannot be encrypted to at `usableAt`.
 */
export async function pgpEscrow(key: PublicKey, usableAt: Date): Promise<PgpEscrow> {
  const enc = await key.getEncryptionKey(undefined, usableAt);
  const ends = [await key.getExpirationTime(), enc === key ? Infinity : await (enc as Subkey).getExpirationTime(usableAt)];
  const expiresAt = Math.min(...ends.map((e) => (e instanceof Date ? e.getTime() : Infinity)));
  return { key, usableAt, expiresAt };
}

/**
 * The date the escrow key is encrypted to as of. openpgp refuses an expired key at the
 * current date; Postern keeps encrypting to the escrow key after it expired, as it does
 * to an expired escrow certificate (compliance must be able to read every message;
 * keys.expiring warns daily meanwhile). So past its expiry the escrow's session-key
 * packet is made as of the moment the key was checked usable. Nothing else about the key
 * can change while the gateway runs: it is read once, at start (where an expired one
 * stops the start).
 */
export function escrowDate(escrow: PgpEscrow, now: Date): Date {
  return now.getTime() < escrow.expiresAt ? now : escrow.usableAt;
}
