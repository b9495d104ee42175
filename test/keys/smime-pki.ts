import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import type { SmimeSigner } from '../../src/keys/identities.js';
import { readCertificate } from '../../src/keys/x509.js';

const { asn1 } = forge;
const { Class, Type } = asn1;
const DAY = 86_400_000;

export interface Built {
  /** PEM certificate. */
  cert: string;
  /** PKCS#8 PEM private key. */
  key: string;
  /** CN, to name it in expectations. */
  name: string;
}

export interface CertSpec {
  name: string;
  /** O, as a UTF8String (what CAs write for names beyond ASCII). */
  org?: string;
  /** OU, as a BMPString (UTF-16BE: older CAs). */
  unit?: string;
  /** rfc822Name and emailProtection: an S/MIME end-entity certificate. */
  email?: string;
  keyType?: 'rsa' | 'ec';
  /** Signed by this certificate's key; self-signed when absent. */
  issuer?: Built;
  ca?: boolean;
  pathLen?: number;
  /** The digest the issuer signs with; sha1 makes a certificate Postern must refuse. */
  hash?: 'sha256' | 'sha1';
  expired?: boolean;
}

/** Signature AlgorithmIdentifiers: RSA PKCS#1 v1.5 carries a NULL, ECDSA nothing (RFC 5758). */
const SIG_ALG: Record<string, { oid: string; nullParams: boolean }> = {
  'rsa-sha256': { oid: '1.2.840.113549.1.1.11', nullParams: true },
  'rsa-sha1': { oid: '1.2.840.113549.1.1.5', nullParams: true },
  'ec-sha256': { oid: '1.2.840.10045.4.3.2', nullParams: false },
  'ec-sha1': { oid: '1.2.840.10045.4.1', nullParams: false },
};

/**
 * A certificate of any key type, signed by any issuer key (RSA or EC) with SHA-256 or
 * SHA-1. node-forge writes only RSA certificates signed in its own code, so the
 * TBSCertificate is made by node-forge, its public key and signature algorithm are
 * swapped for the real ones, and Node signs it. OpenSSL reads the result
 * (test/keys/smime-chains.test.ts checks with `openssl verify`).
 */
export function buildCert(spec: CertSpec): Built {
  const pair =
    spec.keyType === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'prime256v1', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
      : generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const cert = forge.pki.createCertificate();
  // A placeholder RSA key lets node-forge write the TBSCertificate; the real SPKI replaces it.
  cert.publicKey = forge.pki.rsa.setPublicKey(new forge.jsbn.BigInteger('00c5', 16), new forge.jsbn.BigInteger('010001', 16));
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  const now = Date.now();
  cert.validity.notBefore = new Date(now - (spec.expired ? 10 : 1) * DAY);
  cert.validity.notAfter = new Date(now + (spec.expired ? -1 : 60) * DAY);
  // node-forge's types call valueTagClass a Class; it is the string type's tag.
  const stringType = (t: forge.asn1.Type) => t as unknown as forge.asn1.Class;
  const subject: forge.pki.CertificateField[] = [
    { name: 'commonName', value: spec.name },
    ...(spec.org ? [{ name: 'organizationName', value: spec.org, valueTagClass: stringType(Type.UTF8) }] : []),
    // node-forge writes a BMPString from the text itself (UTF-16BE).
    ...(spec.unit ? [{ name: 'organizationalUnitName', value: spec.unit, valueTagClass: stringType(Type.BMPSTRING) }] : []),
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions(
    spec.ca
      ? [
          { name: 'basicConstraints', cA: true, critical: true, ...(spec.pathLen !== undefined ? { pathLenConstraint: spec.pathLen } : {}) },
          { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
        ]
      : [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', emailProtection: true },
          ...(spec.email ? [{ name: 'subjectAltName', altNames: [{ type: 1, value: spec.email }] }] : []),
        ],
  );
  const signerKey = createPrivateKey(spec.issuer?.key ?? pair.privateKey);
  const alg = SIG_ALG[`${signerKey.asymmetricKeyType === 'ec' ? 'ec' : 'rsa'}-${spec.hash ?? 'sha256'}`]!;
  const algId = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
    asn1.create(Class.UNIVERSAL, Type.OID, false, asn1.oidToDer(alg.oid).getBytes()),
    ...(alg.nullParams ? [asn1.create(Class.UNIVERSAL, Type.NULL, false, '')] : []),
  ]);
  cert.siginfo.algorithmOid = alg.oid;
  const tbs = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  const fields = tbs.value as forge.asn1.Asn1[];
  // [0] version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, [3] extensions
  fields[2] = algId;
  if (spec.issuer) fields[3] = subjectName(spec.issuer.cert);
  fields[6] = asn1.fromDer(createPublicKey(pair.publicKey).export({ type: 'spki', format: 'der' }).toString('binary'));
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign(spec.hash ?? 'sha256', tbsDer, signerKey);
  const whole = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [tbs, algId, asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, `\u0000${signature.toString('binary')}`)]);
  return { cert: forge.pem.encode({ type: 'CERTIFICATE', body: asn1.toDer(whole).getBytes() }), key: pair.privateKey, name: spec.name };
}

/** The subject Name of a certificate of any key type, as ASN.1 (its issuer's Name for the next one). */
function subjectName(pem: string): forge.asn1.Asn1 {
  const tbs = (asn1.fromDer(forge.pem.decode(pem)[0]!.body).value as forge.asn1.Asn1[])[0]!;
  return (tbs.value as forge.asn1.Asn1[])[5]!;
}

/** Writes PEM text to a temp file (for keys.smimeTrust, openssl -CAfile). */
export function pemFile(name: string, ...pems: string[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'postern-pki-')), name);
  writeFileSync(file, pems.join(''));
  return file;
}

/** A commercial-style hierarchy: root → intermediate → recipient certificate. */
export function threeTier(email: string, opts: { rootKey?: 'rsa' | 'ec'; intermediateKey?: 'rsa' | 'ec' } = {}) {
  const root = buildCert({ name: 'Test Root CA', ca: true, keyType: opts.rootKey });
  const intermediate = buildCert({ name: 'Test Issuing CA 1', ca: true, pathLen: 0, issuer: root, keyType: opts.intermediateKey });
  const leaf = buildCert({ name: email, email, issuer: intermediate });
  return { root, intermediate, leaf };
}

/** An S/MIME signing identity as the gateway loads it (keys/identities.ts), from PEM. */
export function signerFrom(id: { cert: string; key: string }, chain: string[] = []): SmimeSigner {
  return { cert: readCertificate(id.cert), key: createPrivateKey(id.key), chain: chain.map((c) => readCertificate(c)) };
}
