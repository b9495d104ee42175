import { createPrivateKey } from 'node:crypto';
import type { PosternConfig } from '../config/schema.js';
import { readPemOrFile } from '../common/pem-or-file.js';

export interface DkimKey {
  domain: string;
  selector: string;
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  /** PEM (PKCS#8); only ever handed to the signer, never logged. */
  privateKey: string;
}

/** RFC 8301 §3.2: signers MUST use RSA keys of at least 1024 bits; 2048 is what to publish. */
const MIN_RSA_BITS = 1024;

/**
 * The dkim.keys of the config, read and checked at start-up: the key must open, be of
 * the type its algorithm names, and (RSA) be at least 1024 bits; a problem stops the
 * start with the entry named.
 */
export async function loadDkimKeys(config: PosternConfig): Promise<DkimKey[]> {
  const out: DkimKey[] = [];
  for (const [i, k] of config.dkim.keys.entries()) {
    try {
      const key = createPrivateKey(await readPemOrFile('privateKey', k.privateKey));
      const want = k.algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519';
      if (key.asymmetricKeyType !== want) throw new Error(`the key is ${key.asymmetricKeyType ?? 'unknown'}, but algorithm is ${k.algorithm}`);
      const bits = key.asymmetricKeyDetails?.modulusLength;
      if (want === 'rsa' && (bits ?? 0) < MIN_RSA_BITS) throw new Error(`RSA key of ${bits ?? 0} bits (at least ${MIN_RSA_BITS}; publish 2048)`);
      out.push({ domain: k.domain, selector: k.selector, algorithm: k.algorithm, privateKey: key.export({ type: 'pkcs8', format: 'pem' }) as string });
    } catch (err) {
      throw new Error(`dkim.keys.${i} (${k.selector}._domainkey.${k.domain}): ${(err as Error).message}`);
    }
  }
  return out;
}

/**
 * The keys that sign for a From domain: those of the domain itself, else those of its
 * nearest parent that has any (d= may be a parent domain: relaxed DMARC alignment).
 */
export function keysFor(keys: DkimKey[], domain: string): DkimKey[] {
  for (let d = domain.toLowerCase(); d.includes('.'); d = d.slice(d.indexOf('.') + 1)) {
    const mine = keys.filter((k) => k.domain === d);
    if (mine.length) return mine;
  }
  return [];
}
