import { generateKeyPairSync } from 'node:crypto';

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface GeneratedDkimKey {
  /** PKCS#8 PEM. */
  privateKey: string;
  /** The TXT record's value: v=DKIM1; k=...; p=... */
  txt: string;
}

/** The 12-byte DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key follows. */
const ED25519_SPKI_PREFIX = 12;

/**
 * A new DKIM key pair: RSA 2048 (RFC 8301) or Ed25519 (RFC 8463, whose p= is the raw
 * 32-byte public key rather than a SubjectPublicKeyInfo).
 */
export function generateDkimKey(algorithm: DkimAlgorithm): GeneratedDkimKey {
  if (algorithm === 'ed25519-sha256') {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'der' } });
    return { privateKey, txt: `v=DKIM1; k=ed25519; p=${publicKey.subarray(ED25519_SPKI_PREFIX).toString('base64')}` };
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'der' } });
  return { privateKey, txt: `v=DKIM1; k=rsa; p=${publicKey.toString('base64')}` };
}

/** A zone-file line; TXT strings are at most 255 characters each (RFC 1035 §3.3.14). */
export function dnsTxtRecord(domain: string, selector: string, txt: string): string {
  const strings = (txt.match(/.{1,255}/g) ?? []).map((s) => `"${s}"`);
  return `${selector}._domainkey.${domain}. IN TXT ( ${strings.join(' ')} )`;
}
