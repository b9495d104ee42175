import { readKey } from 'openpgp';
import { pemCertificates } from './material.js';
import { comparableAddress } from '../common/domain-name.js';
import { normalizedRecord, servedAs, type KeyRecord, type KeySource, type Served } from './record.js';

/** Who may replace whom for one address: an admin's import over a harvest over discovery. */
const RANK: Record<KeySource, number> = { import: 3, harvest: 2, wkd: 1, keyserver: 1 };

/**
 * What a key store holds after `put(incoming)` when `existing` is the record of the same key
 * already there (or undefined). There is one record per key, and the same key may serve
 * several addresses for different reasons — imported for one, discovered under another user
 * ID, harvested for a third — so a put must never take an address away:
 *  - every address of either record stays served;
 *  - each address of `incoming` gets its source, from and addedAt, unless the address is
 *    already served by a stronger source (a discovery never turns an imported or harvested
 *    address into a cache entry that keys.cacheTtl would expire); the same source refreshes
 *    it (a rediscovered key is found again now);
 *  - the material is both copies combined (below), so a copy that lacks what the other had
 *    (WKD commonly serves a key with only the user ID asked for) never hides it.
 * The incoming record's own `served` is not read: a put states one way for its addresses.
 * Addresses are kept in the comparable form (record.ts), whatever form either record used.
 */
export async function mergeRecord(existing: KeyRecord | undefined, incoming: KeyRecord): Promise<KeyRecord> {
  const claim: Served = { source: incoming.source, from: incoming.from, addedAt: incoming.addedAt };
  const served: Record<string, Served> = {};
  const sameKey = existing?.id === incoming.id && existing.kind === incoming.kind ? normalizedRecord(existing) : undefined;
  for (const a of sameKey?.addresses ?? []) served[a] = servedAs(sameKey as KeyRecord, a) as Served;
  for (const a of new Set(incoming.addresses.map(comparableAddress))) {
    const before = served[a];
    if (!before || RANK[claim.source] >= RANK[before.source]) served[a] = claim;
  }
  const top = strongest(Object.values(served)) ?? claim;
  const material = sameKey ? await combinedMaterial(sameKey, incoming, top === claim) : incoming.material;
  return { id: incoming.id, kind: incoming.kind, addresses: Object.keys(served), ...top, served, material };
}

/** The way that describes the whole record in listings: the strongest source, then the newest. */
function strongest(ways: Served[]): Served | undefined {
  if (!ways.length) return undefined;
  return ways.reduce((best, w) => (RANK[w.source] > RANK[best.source] || (RANK[w.source] === RANK[best.source] && w.addedAt > best.addedAt) ? w : best));
}

/**
 * Both copies of one key as one. OpenPGP: the user IDs, subkeys and signatures of both
 * (openpgp's Key.update: a revocation in either copy applies; what only one copy holds is
 * kept; inspection then counts only what is validly self-signed). S/MIME: the certificate
 * with the intermediates of both (each copy may have come with a different path). The copy
 * of the stronger source leads; should they not combine, it is kept as it is.
 */
async function combinedMaterial(existing: KeyRecord, incoming: KeyRecord, incomingLeads: boolean): Promise<string> {
  const [lead, other] = incomingLeads ? [incoming.material, existing.material] : [existing.material, incoming.material];
  if (lead === other) return lead;
  if (incoming.kind === 'smime') {
    const body = (pem: string) => pem.replace(/-----[^-]+-----|\s/g, '');
    const certs = pemCertificates(lead);
    const seen = new Set(certs.map(body));
    if (!certs.length) return lead;
    const extra = pemCertificates(other).filter((c) => !seen.has(body(c)) && seen.add(body(c)));
    return `${[...certs, ...extra].join('\n')}\n`;
  }
  try {
    const merged = await (await readKey({ armoredKey: lead })).update(await readKey({ armoredKey: other }));
    return merged.armor();
  } catch {
    return lead;
  }
}
