import { createHash } from 'node:crypto';
import { comparableAddress, comparableDomain } from '../common/domain-name.js';
import { parseKeyMaterial } from './material.js';
import { inspectPgpKey } from './pgp-key.js';
import { inspectSmimeCert, readable } from './smime-cert.js';
import type { SmimeTrust } from './smime-trust.js';
import type { KeyRecord, KeyStore } from './store.js';

export interface ImportOptions {
  /** Serve only this address (it must be in the key or certificate). */
  address?: string | undefined;
  /** Serve every address of this domain (gateway-to-gateway keys). */
  domain?: string | undefined;
  /** What S/MIME certificates must chain to (with the CRL check); without it none is stored. */
  smimeTrust?: SmimeTrust | undefined;
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
 * not naming the address it is stored for, not RSA) is refused with the reason, so the
 * store holds only keys that will be used; lookups check them again every time anyway.
 * CA certificates in the text are the intermediates of the others' chains: each
 * certificate is stored with the intermediates its path uses, so a certificate issued
 * by an intermediate (as commercial ones are) is checked again without help later.
 */
export async function importKeys(store: KeyStore, text: string, opts: ImportOptions): Promise<ImportResult[]> {
  const { pgp, pem, unreadable } = await parseKeyMaterial(text);
  const results: ImportResult[] = unreadable.map((u) => ({
    id: `pgp:${createHash('sha256').update(u.block).digest('hex').toUpperCase()}`,
    kind: 'pgp',
    addresses: [],
    expiresAt: undefined,
    refused: `cannot be read as an OpenPGP key (${u.reason})`,
  }));
  for (const armored of pgp) {
    const info = await inspectPgpKey(armored);
    results.push(await save(store, opts, { id: `pgp:${info.fingerprint}`, kind: 'pgp', material: info.armored, emails: info.emails, unusable: info.unusable, expiresAt: info.expiresAt }));
  }
  const certs = pem.map((text) => ({ text, cert: readable(text)[0] }));
  const cas = certs.flatMap((c) => (c.cert?.isCa ? [c.cert] : []));
  const leaves = certs.filter((c) => !c.cert?.isCa);
  // A file of CA certificates only: each is refused with what to do instead.
  for (const c of leaves.length ? leaves : certs) {
    const info = inspectSmimeCert(c.text, opts.smimeTrust, new Date(), cas);
    const material = [info.pem, ...info.chain].join('');
    results.push(await save(store, opts, { id: `smime:${info.fingerprint}`, kind: 'smime', material, emails: info.emails, unusable: info.unusable, expiresAt: info.notAfter || undefined }));
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
  // As the store compares them (record.ts): bücher.example and xn--bcher-kva.example are one.
  const address = opts.address?.trim() ? comparableAddress(opts.address.trim()) : undefined;
  const domain = opts.domain?.trim().replace(/^@/, '') ? comparableDomain(opts.domain.trim().replace(/^@/, '')) : undefined;
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
