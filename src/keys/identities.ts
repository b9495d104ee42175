import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { decryptKey, readPrivateKey, type PrivateKey } from 'openpgp';
import type { PosternConfig } from '../config/schema.js';
import { mostSpecificMatch } from '../ingress/authorize.js';

export interface OrgIdentity {
  /** Decrypted OpenPGP signing key. */
  pgp?: PrivateKey | undefined;
  /** S/MIME signing certificate and its (decrypted, PKCS#8) private key, PEM. */
  smime?: { cert: string; key: string } | undefined;
}

export type IdentityFor = (senderDomain: string) => OrgIdentity | undefined;

/** A PEM or armored value given inline (e.g. through ${file:...}), else a file name. */
export const textOrFile = (v: string): Promise<string> => (v.trimStart().startsWith('-----BEGIN') ? Promise.resolve(v) : readFile(v, 'utf8'));

/**
 * Organisation signing identities per sender domain (exact, else the most specific
 * *.parent), loaded once at start-up. Private keys may be passphrase-protected at rest;
 * they are decrypted here, and a key that does not open, cannot sign or does not match
 * its certificate stops the start with the domain named.
 */
export async function loadIdentities(config: PosternConfig): Promise<IdentityFor> {
  const loaded = new Map<string, OrgIdentity>();
  for (const [domain, id] of Object.entries(config.identities)) {
    try {
      const identity: OrgIdentity = {};
      if (id.pgpKey) identity.pgp = await openPgpKey(await textOrFile(id.pgpKey), id.pgpPassphrase);
      if (id.smimeCert && id.smimeKey) identity.smime = await openSmime(await textOrFile(id.smimeCert), await textOrFile(id.smimeKey), id.smimeKeyPassphrase);
      loaded.set(domain, identity);
    } catch (err) {
      throw new Error(`identities.${domain}: ${(err as Error).message}`);
    }
  }
  return (senderDomain) => {
    const match = mostSpecificMatch([...loaded.keys()], senderDomain.toLowerCase());
    return match ? loaded.get(match) : undefined;
  };
}

async function openPgpKey(armored: string, passphrase: string | undefined): Promise<PrivateKey> {
  const key = await readPrivateKey({ armoredKey: armored });
  const open = key.isDecrypted() ? key : await decryptKey({ privateKey: key, passphrase: passphrase ?? '' });
  await open.getSigningKey();
  return open;
}

async function openSmime(cert: string, keyPem: string, passphrase: string | undefined): Promise<{ cert: string; key: string }> {
  const key = createPrivateKey(passphrase ? { key: keyPem, passphrase } : keyPem);
  if (key.asymmetricKeyType !== 'rsa') throw new Error('smimeKey must be an RSA key');
  if (!new X509Certificate(cert).checkPrivateKey(key)) throw new Error('smimeKey does not belong to smimeCert');
  return { cert, key: key.export({ type: 'pkcs8', format: 'pem' }) as string };
}
