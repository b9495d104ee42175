import { constants, createCipheriv, createHash, publicEncrypt, randomBytes, sign } from 'node:crypto';
import type { SmimeSigner } from '../keys/identities.js';
import type { Certificate } from '../keys/x509.js';
import { algorithm, explicit, implicit, nullValue, octets, oid, sequence, setOf, smallInt, time, tlv, toBuffer, type Der } from './der.js';

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  sha256: '2.16.840.1.101.3.4.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  smimeCapabilities: '1.2.840.113549.1.9.15',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  aes192Cbc: '2.16.840.1.101.3.4.1.22',
  aes128Cbc: '2.16.840.1.101.3.4.1.2',
};

/*
 * Why CMS is written here rather than by a library. node-forge's pkcs7 encrypted with
 * AES in JavaScript over binary strings and held the event loop for a large fraction of a
 * second on a 10 MB message; here Node's crypto (OpenSSL) does the AES, RSA, hashing and
 * signing, and der.ts only lays out headers around the results, copying the encrypted
 * body once. pkijs encrypts natively too, but copies the encrypted body byte by byte in
 * JavaScript into 1024-byte OCTET STRING pieces, and writes no AuthEnvelopedData either.
 * Postern only writes these structures, never parses CMS an attacker sent with them, and
 * the tests have OpenSSL (`openssl cms -decrypt`, `-verify`, `asn1parse`) read every kind
 * of output. EnvelopedData with AES-256-CBC rather than AuthEnvelopedData (RFC 5083,
 * AES-GCM): every S/MIME client opens the former, while many in use cannot yet open the
 * latter; integrity comes from the organisation's signature inside, when one is set.
 */

/** IssuerAndSerialNumber (RFC 5652 §10.2.4): how a recipient or signer certificate is named. */
const issuerAndSerial = (cert: Certificate) => sequence(Buffer.from(cert.issuerName, 'hex'), tlv(0x02, Buffer.from(cert.serial, 'hex')));
const attribute = (type: string, value: Der) => sequence(oid(type), setOf(value));

/**
 * A detached CMS SignedData (RFC 5652 §5, RFC 8551 §2.5) over `content`: SHA-256, the
 * signing certificate and its chain (so a recipient who trusts only the root can verify),
 * and the signed attributes contentType, signingTime, messageDigest and
 * SMIMECapabilities (the ciphers Postern prefers to receive, strongest first). Written
 * with Node's crypto: hashing a large body and the private-key operation run natively.
 */
export function detachedSignature(content: Buffer, signer: SmimeSigner, now = new Date()): Buffer {
  const capabilities = sequence(...[OID.aes256Cbc, OID.aes192Cbc, OID.aes128Cbc].map((c) => sequence(oid(c))));
  const signedAttrs = toBuffer(setOf(
    attribute(OID.contentType, oid(OID.data)),
    attribute(OID.signingTime, time(now)),
    attribute(OID.messageDigest, octets(createHash('sha256').update(content).digest())),
    attribute(OID.smimeCapabilities, capabilities),
  ));
  // The signature covers the attributes as a SET (RFC 5652 §5.4), sent as [0] IMPLICIT.
  const ec = signer.key.asymmetricKeyType === 'ec';
  const signerInfo = sequence(
    smallInt(1),
    issuerAndSerial(signer.cert),
    algorithm(OID.sha256),
    implicit(0, signedAttrs),
    ec ? algorithm(OID.ecdsaWithSha256) : algorithm(OID.rsaEncryption, nullValue()),
    octets(sign('sha256', signedAttrs, signer.key)),
  );
  const signed = sequence(smallInt(1), setOf(algorithm(OID.sha256)), sequence(oid(OID.data)), implicit(0, setOf(...[signer.cert, ...signer.chain].map((c) => c.der))), setOf(signerInfo));
  return toBuffer(sequence(oid(OID.signedData), explicit(0, signed)));
}

/**
 * CMS EnvelopedData (RFC 5652 §6, RFC 8551 §2.7): `content` encrypted with a fresh
 * AES-256-CBC key, the key transported to each recipient with RSA (PKCS#1 v1.5, which
 * every S/MIME client reads). The cipher's output goes into the structure as it came
 * out: the headers around it are built first and joined with it in one copy.
 */
export function envelopedData(content: Buffer, recipients: Certificate[]): Buffer {
  const key = randomBytes(32);
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = [cipher.update(content), cipher.final()];
  const infos = recipients.map((r) => sequence(smallInt(0), issuerAndSerial(r), algorithm(OID.rsaEncryption, nullValue()), octets(publicEncrypt({ key: r.publicKey, padding: constants.RSA_PKCS1_PADDING }, key))));
  const contentInfo = sequence(oid(OID.data), algorithm(OID.aes256Cbc, octets(iv)), implicit(0, octets(...encrypted)));
  return toBuffer(sequence(oid(OID.envelopedData), explicit(0, sequence(smallInt(0), setOf(...infos), contentInfo))));
}
