import forge from 'node-forge';

export interface SmimeCertInfo {
  /** SHA-256 fingerprint of the certificate (hex, upper case). */
  fingerprint: string;
  serial: string;
  subject: string;
  emails: string[];
  notAfter: number;
  unusable?: string | undefined;
  pem: string;
}

/** Whether a CRL revokes a certificate: the reason, or undefined (see crl.ts). */
export type RevocationCheck = (cert: forge.pki.Certificate) => string | undefined;

/**
 * Reads an S/MIME certificate and decides whether Postern may encrypt to it: chains to
 * the trust store, within its validity, RSA of at least 2048 bits, key usage allows key
 * encipherment, extended key usage (when present) allows email protection, and no
 * configured CRL revokes it. Whether it names the address is the caller's check.
 */
export function inspectSmimeCert(pem: string, trust: string[], now = new Date(), revoked?: RevocationCheck): SmimeCertInfo {
  const cert = forge.pki.certificateFromPem(pem);
  const der = forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes();
  const fingerprint = forge.md.sha256.create().update(der).digest().toHex().toUpperCase();
  const san = cert.getExtension('subjectAltName') as { altNames?: { type: number; value: string }[] } | null;
  const emails = [
    ...(san?.altNames ?? []).filter((a) => a.type === 1).map((a) => a.value.toLowerCase()),
    ...cert.subject.attributes.filter((a) => a.name === 'emailAddress').map((a) => String(a.value).toLowerCase()),
  ];
  const base: SmimeCertInfo = {
    fingerprint,
    serial: cert.serialNumber,
    subject: cert.subject.attributes.map((a) => `${a.shortName ?? a.name}=${String(a.value)}`).join(', '),
    emails: [...new Set(emails)],
    notAfter: cert.validity.notAfter.getTime(),
    pem: forge.pki.certificateToPem(cert),
  };
  if (now < cert.validity.notBefore) return { ...base, unusable: 'not valid yet' };
  if (now > cert.validity.notAfter) return { ...base, unusable: `expired on ${cert.validity.notAfter.toISOString()}` };
  const rsa = cert.publicKey as forge.pki.rsa.PublicKey;
  if (!rsa.n || rsa.n.bitLength() < 2048) return { ...base, unusable: 'RSA key shorter than 2048 bits' };
  const ku = cert.getExtension('keyUsage') as { keyEncipherment?: boolean } | null;
  if (ku && !ku.keyEncipherment) return { ...base, unusable: 'key usage does not allow key encipherment' };
  const eku = cert.getExtension('extKeyUsage') as { emailProtection?: boolean; [k: string]: unknown } | null;
  if (eku && !eku.emailProtection) return { ...base, unusable: 'extended key usage lacks emailProtection' };
  try {
    const store = forge.pki.createCaStore(trust.map((p) => forge.pki.certificateFromPem(p)));
    forge.pki.verifyCertificateChain(store, [cert], { validityCheckDate: now });
  } catch (err) {
    const e = err as { message?: string; error?: string };
    return { ...base, unusable: `not trusted: ${e.message ?? e.error ?? 'chain does not verify'}` };
  }
  const revocation = revoked?.(cert);
  return revocation ? { ...base, unusable: revocation } : base;
}
