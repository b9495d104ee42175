import { readKeys } from 'openpgp';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const ARMORED_KEY = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----/;

/** Each PEM certificate in a file (a CA bundle holds several). */
export function pemCertificates(text: string): string[] {
  return [...text.matchAll(PEM_CERT)].map((m) => m[0]);
}

/** Splits a file into the OpenPGP public keys (armored) and PEM certificates it holds. */
export async function parseKeyMaterial(text: string): Promise<{ pgp: string[]; pem: string[] }> {
  const pem = pemCertificates(text);
  const pgp = ARMORED_KEY.test(text) ? await splitPgpKeys(text) : [];
  return { pgp, pem };
}

/**
 * One armored public key per key in the input: armored text (one or several blocks) or
 * binary key data as WKD serves it. A private key is reduced to its public part.
 */
export async function splitPgpKeys(data: string | Buffer): Promise<string[]> {
  const text = typeof data === 'string' ? data : data.toString('latin1');
  const keys = ARMORED_KEY.test(text)
    ? (await Promise.all([...text.matchAll(/-----BEGIN PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]+?-----END PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----/g)].map((m) => readKeys({ armoredKeys: m[0] })))).flat()
    : await readKeys({ binaryKeys: new Uint8Array(typeof data === 'string' ? Buffer.from(data, 'latin1') : data) });
  return keys.map((k) => k.toPublic().armor());
}
