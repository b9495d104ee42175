import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { generateKey } from 'openpgp';

/** A recipient's key pair: the public half goes into Postern's store, the private half checks. */
export interface KeyPair {
  publicKey: string;
  privateKey: string;
}

/**
 * An OpenPGP recipient key. RSA 3072 is GnuPG 2.2's default (Debian 12's gpg), the
 * kind most gateways and clients hold; it is also the cheaper one to encrypt to.
 */
export async function pgpRecipientKey(email: string): Promise<KeyPair> {
  const { publicKey, privateKey } = await generateKey({ type: 'rsa', rsaBits: 3072, userIDs: [{ name: 'Postern bench recipient', email }], format: 'armored' });
  return { publicKey, privateKey };
}

/** A throwaway CA and one S/MIME recipient certificate it issued (PEM). */
export interface SmimeMaterial {
  caPem: string;
  cert: KeyPair;
}

/**
 * The smallest PKI Postern accepts a certificate from (src/keys/smime-cert.ts): RSA of
 * 2048 bits, chained to a trusted CA, keyEncipherment, emailProtection, the address as
 * an rfc822Name. Keys are made by Node (fast), certificates by node-forge.
 */
export function smimeRecipient(email: string): SmimeMaterial {
  const ca = rsa();
  const caCert = certificate(ca.publicKey, 'Postern bench CA');
  caCert.setIssuer(caCert.subject.attributes);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  caCert.sign(forge.pki.privateKeyFromPem(ca.privateKey), forge.md.sha256.create());
  const leaf = rsa();
  const leafCert = certificate(leaf.publicKey, email);
  leafCert.setIssuer(caCert.subject.attributes);
  leafCert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', emailProtection: true },
    { name: 'subjectAltName', altNames: [{ type: 1, value: email }] },
  ]);
  leafCert.sign(forge.pki.privateKeyFromPem(ca.privateKey), forge.md.sha256.create());
  return { caPem: forge.pki.certificateToPem(caCert), cert: { publicKey: forge.pki.certificateToPem(leafCert), privateKey: leaf.privateKey } };
}

function rsa(): KeyPair {
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
}

function certificate(publicKeyPem: string, commonName: string): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 30 * 86_400_000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  return cert;
}
