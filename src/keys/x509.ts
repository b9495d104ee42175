import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { comparableAddress } from '../common/domain-name.js';

const { asn1 } = forge;

/** Parts of node-forge missing from its type definitions. */
const pki = forge.pki as unknown as {
  RDNAttributesAsArray(name: forge.asn1.Asn1): { type: string; name?: string; shortName?: string; value: unknown; valueTagClass?: number }[];
  certificateExtensionsFromAsn1(exts: forge.asn1.Asn1): CertExtension[];
};

/** An extension as node-forge decodes it (keyUsage bits, basicConstraints, SAN, ...). */
export interface CertExtension {
  name?: string;
  critical?: boolean;
  [field: string]: unknown;
}

/**
 * An X.509 certificate of any key type (RSA, EC, Ed25519). node-forge reads only RSA
 * certificates — one EC certificate in a CA bundle made it throw for all of them — so
 * the fields are read from the DER here, and signatures are checked by Node (OpenSSL).
 */
export interface Certificate {
  der: Buffer;
  pem: string;
  x509: X509Certificate;
  /** SHA-256 of the DER (hex, upper case): the id Postern stores it under. */
  fingerprint: string;
  /** Serial number as in the DER (hex, lower case), as CRLs list it. */
  serial: string;
  subject: string;
  issuer: string;
  /** DER of the subject and issuer Names (hex): how issuers and CRLs are matched. */
  subjectName: string;
  issuerName: string;
  notBefore: Date;
  notAfter: Date;
  /** OID of the algorithm the issuer signed it with. */
  signatureOid: string;
  publicKey: KeyObject;
  /** 'rsa', 'ec', 'ed25519', ... */
  keyType: string;
  /** RSA modulus length. */
  keyBits?: number | undefined;
  /** basicConstraints cA. */
  isCa: boolean;
  pathLen?: number | undefined;
  extensions: CertExtension[];
  /** rfc822Name alternative names and emailAddress attributes, in the comparable form (local part lower-cased, domain in ASCII). */
  emails: string[];
}

/** Signature algorithms a certificate must not be signed with (collisions are practical). */
export const WEAK_SIGNATURES: Record<string, string> = {
  '1.2.840.113549.1.1.2': 'MD2 (md2WithRSAEncryption)',
  '1.2.840.113549.1.1.4': 'MD5 (md5WithRSAEncryption)',
  '1.2.840.113549.1.1.5': 'SHA-1 (sha1WithRSAEncryption)',
  '1.3.14.3.2.29': 'SHA-1 (sha1WithRSASignature)',
  '1.2.840.10045.4.1': 'SHA-1 (ecdsa-with-SHA1)',
  '1.2.840.10040.4.3': 'SHA-1 (dsa-with-sha1)',
};

/** The display form of an ASN.1 Name: "CN=..., O=...", an attribute without a known name by its OID. */
export const nameText = (name: forge.asn1.Asn1) =>
  pki
    .RDNAttributesAsArray(name)
    .map((a) => `${a.shortName ?? a.name ?? a.type}=${attributeText(a.value, a.valueTagClass)}`)
    .join(', ');

/** ASN.1 UniversalString (X.680 §41), missing from node-forge's Type names. */
const UNIVERSAL_STRING = 28;

/**
 * The text of a Name attribute. node-forge hands over most string types' bytes as they
 * are, so "O=Dést" in a UTF8String came out as "O=DÃ©st" in logs and reasons: decode
 * UTF8String (what CAs write) and UniversalString (UCS-4). node-forge decodes BMPString
 * itself; PrintableString, IA5String and TeletexString are one byte a character.
 */
function attributeText(value: unknown, tag: number | undefined): string {
  if (typeof value !== 'string') return '';
  const bytes = Buffer.from(value, 'binary');
  if (tag === asn1.Type.UTF8) return bytes.toString('utf8');
  if (tag === UNIVERSAL_STRING) {
    const points = [];
    for (let i = 0; i + 4 <= bytes.length; i += 4) points.push(bytes.readUInt32BE(i));
    return points.map((p) => (p <= 0x10ffff ? String.fromCodePoint(p) : '\ufffd')).join('');
  }
  return value;
}

/** A Name (or any node) as DER bytes in hex. */
export const derHex = (node: forge.asn1.Asn1) => forge.util.bytesToHex(asn1.toDer(node).getBytes());

/** asn1 time → Date (UTCTime or GeneralizedTime). */
export function asn1Date(node: forge.asn1.Asn1): Date {
  return node.type === asn1.Type.UTCTIME ? asn1.utcTimeToDate(node.value as string) : asn1.generalizedTimeToDate(node.value as string);
}

/** The (first) certificate of a PEM text, or a DER certificate. Throws what it cannot read. */
export function readCertificate(input: string | Buffer): Certificate {
  const der = typeof input === 'string' ? Buffer.from(forge.pem.decode(input)[0]?.body ?? '', 'binary') : input;
  if (!der.length) throw new Error('no PEM certificate');
  const x509 = new X509Certificate(der);
  const top = asn1.fromDer(der.toString('binary'));
  const [tbs, sigAlg] = top.value as forge.asn1.Asn1[];
  const fields = [...((tbs?.value as forge.asn1.Asn1[] | undefined) ?? [])];
  if (fields[0]?.tagClass === asn1.Class.CONTEXT_SPECIFIC && fields[0].type === 0) fields.shift(); // [0] version
  const [serial, , issuer, validity, subject] = fields;
  if (!serial || !issuer || !validity || !subject || !sigAlg) throw new Error('not an X.509 certificate');
  const extNode = fields.find((f) => f.tagClass === asn1.Class.CONTEXT_SPECIFIC && f.type === 3);
  const extensions = extNode ? pki.certificateExtensionsFromAsn1(extNode) : [];
  const [notBefore, notAfter] = (validity.value as forge.asn1.Asn1[]).map(asn1Date);
  const basic = extensions.find((e) => e.name === 'basicConstraints') as { cA?: boolean; pathLenConstraint?: number } | undefined;
  const san = extensions.find((e) => e.name === 'subjectAltName') as { altNames?: { type: number; value: string }[] } | undefined;
  const emailAttrs = pki.RDNAttributesAsArray(subject).filter((a) => a.name === 'emailAddress');
  const emails = [...(san?.altNames ?? []).filter((a) => a.type === 1).map((a) => a.value), ...emailAttrs.map((a) => String(a.value))].map(comparableAddress);
  const publicKey = x509.publicKey;
  return {
    der,
    pem: forge.pem.encode({ type: 'CERTIFICATE', body: der.toString('binary') }),
    x509,
    fingerprint: createHash('sha256').update(der).digest('hex').toUpperCase(),
    serial: forge.util.bytesToHex(serial.value as string).toLowerCase(),
    subject: nameText(subject),
    issuer: nameText(issuer),
    subjectName: derHex(subject),
    issuerName: derHex(issuer),
    notBefore: notBefore as Date,
    notAfter: notAfter as Date,
    signatureOid: asn1.derToOid((sigAlg.value as forge.asn1.Asn1[])[0]!.value as string),
    publicKey,
    keyType: publicKey.asymmetricKeyType ?? 'unknown',
    keyBits: publicKey.asymmetricKeyDetails?.modulusLength,
    isCa: Boolean(basic?.cA),
    pathLen: basic?.pathLenConstraint,
    extensions,
    emails: [...new Set(emails)],
  };
}

export function extension<T>(cert: Certificate, name: string): (CertExtension & T) | undefined {
  return cert.extensions.find((e) => e.name === name) as (CertExtension & T) | undefined;
}

/** How a key is described in a reason: "EC (prime256v1)", "RSA 2048 bits". */
export function keyDescription(cert: Certificate): string {
  const d = cert.publicKey.asymmetricKeyDetails;
  if (cert.keyType === 'rsa') return `RSA ${cert.keyBits ?? 0} bits`;
  return d?.namedCurve ? `${cert.keyType.toUpperCase()} (${d.namedCurve})` : cert.keyType.toUpperCase();
}

/** Whether `issuer` issued `cert`: names and key identifiers match (OpenSSL), and its signature verifies. */
export function issuedBy(cert: Certificate, issuer: Certificate): boolean {
  if (cert.issuerName !== issuer.subjectName && !cert.x509.checkIssued(issuer.x509)) return false;
  try {
    return cert.x509.verify(issuer.publicKey);
  } catch {
    return false;
  }
}
