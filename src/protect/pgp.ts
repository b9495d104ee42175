import { createMessage, encrypt, readKey, type PrivateKey, type PublicKey } from 'openpgp';
import { armorMessage } from './armor.js';
import { boundary, replaceField, splitEntity } from './mime-entity.js';
import { withProtectedHeaders } from './protected-headers.js';

export interface PgpProtectOptions {
  /** Recipients' public keys: parsed, or armored. */
  recipientKeys: (PublicKey | string)[];
  /** Organisation signing key (decrypted), when configured. */
  signingKey?: PrivateKey | undefined;
  /** Escrow public key: compliance can read what Postern encrypts. */
  escrowKey?: PublicKey | string | undefined;
  protectSubject: boolean;
}

/**
 * PGP/MIME (RFC 3156): the whole original MIME entity (Content-* headers and body, so
 * attachments and alternatives survive) is encrypted — and signed when an organisation
 * key is configured — as multipart/encrypted. With protectSubject the outer Subject
 * becomes "..." and the inner entity carries the original Subject, From, To, Cc, Date,
 * Message-ID and Reply-To, marked protected-headers="v1" (see protected-headers.ts).
 */
export async function pgpProtect(raw: Buffer, opts: PgpProtectOptions): Promise<Buffer> {
  const { outer, entity } = splitEntity(raw);
  let inner = entity;
  let outerFields = outer;
  if (opts.protectSubject) {
    inner = withProtectedHeaders(outer, entity);
    outerFields = replaceField(outer, 'Subject', '...');
  }
  const keys = await Promise.all([...opts.recipientKeys, ...(opts.escrowKey ? [opts.escrowKey] : [])].map(async (k) => (typeof k === 'string' ? ((await readKey({ armoredKey: k })) as PublicKey) : k)));
  const binary = (await encrypt({
    message: await createMessage({ binary: new Uint8Array(inner.buffer, inner.byteOffset, inner.byteLength) }),
    encryptionKeys: keys,
    ...(opts.signingKey ? { signingKeys: opts.signingKey } : {}),
    format: 'binary',
  })) as Uint8Array;
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
