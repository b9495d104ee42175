import { parseKeyMaterial } from './material.js';
import { inspectPgpKey } from './pgp-key.js';
import { inspectSmimeCert, type RevocationCheck } from './smime-cert.js';
import type { KeyRecord, KeyStore } from './store.js';

export interface ImportOptions {
  /** Serve only this address (it must be in the key or certificate). */
  address?: string | undefined;
  /** Serve every address of this domain (gateway-to-gateway keys). */
  domain?: string | undefined;
  smimeTrust: string[];
  revoked?: RevocationCheck | undefined;
  source?: Extract<KeyRecord['source'], 'import' | 'harvest'>;
}

export interface ImportResult {
  id: string;
  kind: KeyRecord['kind'];
  addresses: string[];
  /** Why the key was not stored; undefined when it was. */
  refused?: string | undefined;
  expiresAt?: number | undefined;
}

/**
 * Stores every OpenPGP key and S/MIME certificate in a text (armored keys, PEM
 * certificates). A key that could not be used now (expired, revoked, weak, untrusted,
 * not naming the address it is stored for) is refused with the reason, so the store
 * holds only keys that will be used; lookups check them again every time anyway.
 */
export async function importKeys(store: KeyStore, text: string, opts: ImportOptions): Promise<ImportResult[]> {
  const { pgp, pem } = await parseKeyMaterial(text);
  const results: ImportResult[] = [];
  for (const armored of pgp) {
    const info = await inspectPgpKey(armored);
    results.push(await save(store, opts, { id: `pgp:${info.fingerprint}`, kind: 'pgp', material: info.armored, emails: info.emails, unusable: info.unusable, expiresAt: info.expiresAt }));
  }
  for (const cert of pem) {
    const info = inspectSmimeCert(cert, opts.smimeTrust, new Date(), opts.revoked);
    results.push(await save(store, opts, { id: `smime:${info.fingerprint}`, kind: 'smime', material: info.pem, emails: info.emails, unusable: info.unusable, expiresAt: info.notAfter }));
  }
  return results;
}

interface Candidate {
  id: string;
  kind: KeyRecord['kind'];
  material: string;
  emails: string[];
  unusable?: string | undefined;
  expiresAt?: number | undefined;
}

async function save(store: KeyStore, opts: ImportOptions, c: Candidate): Promise<ImportResult> {
  const address = opts.address?.trim().toLowerCase();
  const domain = opts.domain?.trim().toLowerCase().replace(/^@/, '');
  const addresses = [...(address ? [address] : []), ...(domain ? [`@${domain}`] : [])];
  const serves = addresses.length ? addresses : c.emails;
  const result: ImportResult = { id: c.id, kind: c.kind, addresses: serves, expiresAt: c.expiresAt };
  const refused =
    c.unusable ??
    (!serves.length ? 'it names no address: give --address or --domain' : undefined) ??
    (address && !c.emails.includes(address) ? `it does not name ${address} (it names ${c.emails.join(', ') || 'no address'})` : undefined);
  if (refused) return { ...result, refused };
  await store.put({ id: c.id, kind: c.kind, addresses: serves, source: opts.source ?? 'import', addedAt: Date.now(), material: c.material });
  return result;
}
