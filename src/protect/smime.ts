import type { SmimeSigner } from '../keys/identities.js';
import { readCertificate, type Certificate } from '../keys/x509.js';
import { detachedSignature, envelopedData } from './cms.js';
import { boundary, splitEntity, wrap76 } from './mime-entity.js';

export interface SmimeProtectOptions {
  /** Recipients' certificates (RSA): parsed, or PEM. */
  recipientCerts: (Certificate | string)[];
  /** Organisation signing identity, when configured. */
  signer?: SmimeSigner | undefined;
}

/**
 * S/MIME (RFC 8551): the original MIME entity, signed first (multipart/signed, detached
 * SHA-256 signature with the signer's chain) when an organisation certificate is
 * configured, then enveloped with AES-256-CBC and RSA key transport as
 * application/pkcs7-mime.
 */
export function smimeProtect(raw: Buffer, opts: SmimeProtectOptions): Buffer {
  const { outer, entity } = splitEntity(raw);
  const inner = opts.signer ? signEntity(entity, opts.signer) : entity;
  const der = envelopedData(
    inner,
    opts.recipientCerts.map((c) => (typeof c === 'string' ? readCertificate(c) : c)),
  );
  const head = [
    ...outer,
    'MIME-Version: 1.0',
    'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="smime.p7m"',
    'Content-Description: S/MIME encrypted message',
    '',
    '',
  ];
  return Buffer.concat([Buffer.from(head.join('\r\n'), 'latin1'), Buffer.from(wrap76(der.toString('base64')), 'latin1')]);
}

/** multipart/signed with a detached CMS signature over the entity as it goes out. */
export function signEntity(entity: Buffer, signer: SmimeSigner): Buffer {
  const sig = detachedSignature(entity, signer).toString('base64');
  const b = boundary('sig');
  const head = [`Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;\r\n\tboundary="${b}"`, '', 'This is an S/MIME signed message.', `--${b}`, ''].join('\r\n');
  const tail = ['', `--${b}`, 'Content-Type: application/pkcs7-signature; name="smime.p7s"', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="smime.p7s"', '', wrap76(sig) + `--${b}--`, ''].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), entity, Buffer.from(tail, 'latin1')]);
}
