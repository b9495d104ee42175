import { readKey, type PrivateKey, type PublicKey } from 'openpgp';
import { armorMessage } from './armor.js';
import { boundary, splitEntity } from './mime-entity.js';
import { encryptEntity } from './pgp-encrypt.js';
import { hideSubject, withProtectedHeaders } from './protected-headers.js';

export interface PgpProtectOptions {
  /** Recipients' public keys: parsed, or armored. */
  recipientKeys: (PublicKey | string)[];
  /** Organisation signing key (decrypted), when configured. */
  signingKey?: PrivateKey | undefined;
  /** Escrow public key: compliance can read what Postern encrypts. */
  escrowKey?: PublicKey | string | undefined;
  /**
   * The date the escrow key is encrypted to as of: now by default; once the escrow key
   * has expired, a date when it was usable (pgp-escrow.ts), as openpgp needs.
   */
  escrowDate?: Date | undefined;
  protectSubject: boolean;
}

/**
 * PGP/MIME (RFC 3156): the whole original MIME entity (Content-* headers and body, so
 * attachments and alternatives survive) is encrypted — and signed when an organisation
 * key is configured — as multipart/encrypted. With protectSubject the outer Subject
 * becomes "..." and the fields that repeat it (Thread-Topic, Keywords, Comments) are left
 * out; the inner entity carries them with the original Subject, From, To, Cc, Date,
 * Message-ID and Reply-To, marked protected-headers="v1" (see protected-headers.ts).
 */
export async function pgpProtect(raw: Buffer, opts: PgpProtectOptions): Promise<Buffer> {
  const { outer, entity } = splitEntity(raw);
  const inner = opts.protectSubject ? withProtectedHeaders(outer, entity) : entity;
  const outerFields = opts.protectSubject ? hideSubject(outer) : outer;
  const parsed = async (k: PublicKey | string) => (typeof k === 'string' ? ((await readKey({ armoredKey: k })) as PublicKey) : k);
  const binary = await encryptEntity(inner, {
    recipients: await Promise.all(opts.recipientKeys.map(parsed)),
    escrow: opts.escrowKey ? { key: await parsed(opts.escrowKey), date: opts.escrowDate ?? new Date() } : undefined,
    signingKey: opts.signingKey,
  });
  const b = boundary('pgp');
  const parts = [
    ...outerFields,
    'MIME-Version: 1.0',
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n\tboundary="${b}"`,
    '',
    'This is an OpenPGP/MIME encrypted message (RFC 3156).',
    `--${b}`,
    'Content-Type: application/pgp-encrypted',
    'Content-Description: PGP/MIME version identification',
    '',
    'Version: 1',
    '',
    `--${b}`,
    'Content-Type: application/octet-stream; name="encrypted.asc"',
    'Content-Description: OpenPGP encrypted message',
    'Content-Disposition: inline; filename="encrypted.asc"',
    '',
    armorMessage(binary),
    `--${b}--`,
    '',
  ];
  return Buffer.from(parts.join('\r\n'), 'latin1');
}
