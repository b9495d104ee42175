import { createHash } from 'node:crypto';
import forge from 'node-forge';
import { pemCertificates } from './material.js';
import type { SmimeTrust } from './smime-trust.js';
import { extension, keyDescription, readCertificate, WEAK_SIGNATURES, type Certificate } from './x509.js';

export type { RevocationCheck } from './smime-trust.js';

export interface SmimeCertInfo {
  /** SHA-256 fingerprint of the certificate (hex, upper case). */
  fingerprint: string;
  serial: string;
  subject: string;
  emails: string[];
  notAfter: number;
  unusable?: string | undefined;
  /** The certificate itself (PEM): what is encrypted to. */
  pem: string;
  /** The intermediates between it and its trust anchor (PEM, leaf side first). */
  chain: string[];
  /** When the first certificate of the path expires (ms): the verdict holds until then at most. */
  validUntil?: number | undefined;
}

/**
 * Reads an S/MIME certificate and decides whether Postern may encrypt to it: an RSA key
 * (key transport) of at least 2048 bits, within its validity, key usage allows key
 * encipherment, extended key usage (when present) allows email protection, not signed
 * with SHA-1 or MD5, and a path to a trust anchor — through the intermediates that follow
 * it in `material`, those in `intermediates`, or keys.smimeIntermediates — in which
 * every certificate is current, a CA where it must be, and not revoked by a configured
 * CRL. Whether it names the address is the caller's check. Never throws: a certificate
 * that cannot be read is unusable, with the reason.
 */
export function inspectSmimeCert(material: string, trust: SmimeTrust | undefined, now = new Date(), intermediates: Certificate[] = []): SmimeCertInfo {
  const [first = '', ...rest] = pemCertificates(material);
  let cert: Certificate;
  try {
    cert = readCertificate(first || material);
  } catch (err) {
    return unreadable(first || material, err as Error);
  }
  const given = [...rest.flatMap(readable), ...intermediates];
  const base: SmimeCertInfo = {
    fingerprint: cert.fingerprint,
    serial: cert.serial,
    subject: cert.subject,
    emails: cert.emails,
    notAfter: cert.notAfter.getTime(),
    pem: cert.pem,
    chain: [],
  };
  const unusable = encryptionProblem(cert, now);
  if (unusable) return { ...base, unusable };
  if (!trust) return { ...base, unusable: 'not trusted: keys.smimeTrust holds no CA certificate' };
  try {
    const chain = trust.chain(cert, given, now);
    return { ...base, chain: chain.map((c) => c.pem), validUntil: Math.min(base.notAfter, ...chain.map((c) => c.notAfter.getTime())) };
  } catch (err) {
    return { ...base, unusable: (err as Error).message };
  }
}

/** What makes a certificate itself unfit to encrypt to, whoever issued it (recipients, escrow). */
export function encryptionProblem(cert: Certificate, now: Date): string | undefined {
  if (cert.keyType !== 'rsa') return `not an RSA certificate (${keyDescription(cert)}): S/MIME encryption here uses RSA key transport`;
  if (cert.isCa) return 'a CA certificate, not a recipient\'s: import it with the recipient\'s certificate it issued, or put it in keys.smimeIntermediates';
  if (now < cert.notBefore) return 'not valid yet';
  if (now > cert.notAfter) return `expired on ${cert.notAfter.toISOString()}`;
  if ((cert.keyBits ?? 0) < 2048) return 'RSA key shorter than 2048 bits';
  const weak = WEAK_SIGNATURES[cert.signatureOid];
  if (weak) return `signed with ${weak}: refused (collisions can forge such signatures)`;
  const ku = extension<{ keyEncipherment?: boolean }>(cert, 'keyUsage');
  if (ku && !ku.keyEncipherment) return 'key usage does not allow key encipherment';
  const eku = extension<{ emailProtection?: boolean }>(cert, 'extKeyUsage');
  if (eku && !eku.emailProtection) return 'extended key usage lacks emailProtection';
  return undefined;
}

/** Each readable certificate of a list (an unreadable intermediate simply does not help). */
export function readable(pem: string): Certificate[] {
  try {
    return [readCertificate(pem)];
  } catch {
    return [];
  }
}

function unreadable(pem: string, err: Error): SmimeCertInfo {
  let der = '';
  try {
    der = forge.pem.decode(pem)[0]?.body ?? '';
  } catch {
    // not even PEM: the fingerprint is of the text
  }
  const fingerprint = createHash('sha256').update(der ? Buffer.from(der, 'binary') : Buffer.from(pem)).digest('hex').toUpperCase();
  return { fingerprint, serial: '', subject: '', emails: [], notAfter: 0, pem, chain: [], unusable: `cannot be read as an X.509 certificate (${err.message})` };
}
