import { readKeys } from 'openpgp';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const ARMORED_KEY = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----/;

/** Each PEM certificate in a file (a CA bundle holds several). */
export function pemCertificates(text: string): string[] {
  return [...text.matchAll(PEM_CERT)].map((m) => m[0]);
}

/** Splits a file into the OpenPGP public keys (armored) and PEM certificates it holds. */
export async function parseKeyMaterial(text: string): Promise<{ pgp: string[]; pem: string[]; unreadable: { block: string; reason: string }[] }> {
  const pem = pemCertificates(text);
  const pgp: string[] = [];
  // Block by block: one that cannot be read is named (import refuses it with the reason),
  // and the others still count. It threw for all of them (the API answered 500).
  const unreadable: { block: string; reason: string }[] = [];
  for (const block of armoredBlocks(text)) {
    try {
      pgp.push(...(await splitPgpKeys(block)));
    } catch (err) {
      unreadable.push({ block, reason: (err as Error).message });
    }
  }
  return { pgp, pem, unreadable };
}

function armoredBlocks(text: string): string[] {
  return [...text.matchAll(/-----BEGIN PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]+?-----END PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----/g)].map((m) => m[0]);
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
