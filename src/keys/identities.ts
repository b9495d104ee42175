import { readFile } from 'node:fs/promises';
import { decryptKey, readPrivateKey, type PrivateKey } from 'openpgp';
import type { PosternConfig } from '../config/schema.js';
import { domainMatches } from '../ingress/authorize.js';

export interface OrgIdentity {
  pgp?: PrivateKey | undefined;
  smime?: { cert: string; key: string } | undefined;
}

const pemOrFile = (v: string) => (v.startsWith('-----BEGIN') ? Promise.resolve(v) : readFile(v, 'utf8'));

/**
 * Organisation signing identities per sender domain, loaded (and their private keys
 * decrypted) once at start-up. Keys may come from files or ${env:...}/${file:...}.
 */
export async function loadIdentities(config: PosternConfig): Promise<(senderDomain: string) => OrgIdentity | undefined> {
  const loaded = new Map<string, OrgIdentity>();
  for (const [domain, id] of Object.entries(config.identities)) {
    const identity: OrgIdentity = {};
    if (id.pgpKey) {
      const key = await readPrivateKey({ armoredKey: await pemOrFile(id.pgpKey) });
      identity.pgp = key.isDecrypted() ? key : await decryptKey({ privateKey: key, passphrase: id.pgpPassphrase ?? '' });
    }
    if (id.smimeCert && id.smimeKey) identity.smime = { cert: await pemOrFile(id.smimeCert), key: await pemOrFile(id.smimeKey) };
    loaded.set(domain.toLowerCase(), identity);
  }
  return (senderDomain) => {
    const d = senderDomain.toLowerCase();
    if (loaded.has(d)) return loaded.get(d);
    const pattern = [...loaded.keys()].find((p) => p.startsWith('*') && domainMatches(p, d));
    return pattern ? loaded.get(pattern) : undefined;
  };
}
