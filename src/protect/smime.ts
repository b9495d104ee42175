import forge from 'node-forge';
import { boundary, splitEntity, wrap76 } from './mime-entity.js';

export interface SmimeProtectOptions {
  recipientCerts: string[];
  /** Organisation signing certificate and key, when configured. */
  signer?: { cert: string; key: string } | undefined;
}

/**
 * S/MIME (RFC 8551): the original MIME entity, signed first (multipart/signed, detached
 * SHA-256 signature) when an organisation certificate is configured, then enveloped
 * with AES-256-CBC and RSA key transport (node-forge) as application/pkcs7-mime.
 */
export function smimeProtect(raw: Buffer, opts: SmimeProtectOptions): Buffer {
  const { outer, entity } = splitEntity(raw);
  const inner = opts.signer ? signEntity(entity, opts.signer) : entity;
  const p7 = forge.pkcs7.createEnvelopedData();
  for (const pem of opts.recipientCerts) p7.addRecipient(forge.pki.certificateFromPem(pem));
  p7.content = forge.util.createBuffer(inner.toString('binary'));
  p7.encrypt(undefined, forge.pki.oids['aes256-CBC'] as string);
  const der = forge.asn1.toDer(p7.toAsn1()).getBytes();
  const parts = [
    ...outer,
    'MIME-Version: 1.0',
    'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="smime.p7m"',
    'Content-Description: S/MIME encrypted message',
    '',
    wrap76(Buffer.from(der, 'binary').toString('base64')),
  ];
  return Buffer.from(parts.join('\r\n'), 'latin1');
}

/** multipart/signed with a detached PKCS#7 signature over the entity as it goes out. */
export function signEntity(entity: Buffer, signer: { cert: string; key: string }): Buffer {
  const p7 = forge.pkcs7.createSignedData();
  p7.content = forge.util.createBuffer(entity.toString('binary'));
  p7.addCertificate(signer.cert);
  p7.addSigner({
    key: forge.pki.privateKeyFromPem(signer.key),
    certificate: forge.pki.certificateFromPem(signer.cert),
    digestAlgorithm: forge.pki.oids.sha256 as string,
    authenticatedAttributes: [
      { type: forge.pki.oids.contentType as string, value: forge.pki.oids.data },
      { type: forge.pki.oids.messageDigest as string },
      { type: forge.pki.oids.signingTime as string, value: new Date() as unknown as string },
    ],
  });
  p7.sign({ detached: true });
  const sig = Buffer.from(forge.asn1.toDer(p7.toAsn1()).getBytes(), 'binary').toString('base64');
  const b = boundary('sig');
  return Buffer.from(
    [
      `Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;\r\n\tboundary="${b}"`,
      '',
      'This is an S/MIME signed message.',
      `--${b}`,
      entity.toString('latin1'),
      `--${b}`,
      'Content-Type: application/pkcs7-signature; name="smime.p7s"',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="smime.p7s"',
      '',
      wrap76(sig),
      `--${b}--`,
      '',
    ].join('\r\n'),
    'latin1',
  );
}
