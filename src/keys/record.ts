import { comparableAddress } from '../common/domain-name.js';

export type KeySource = 'import' | 'wkd' | 'keyserver' | 'harvest';

/** How one address came to be served by a key: by whom, where it was found, when. */
export interface Served {
  source: KeySource;
  /** Where a discovered key was found: "wkd:advanced", "wkd:direct" or the keyserver URL. */
  from?: string | undefined;
  /** When it was stored for this address (discovered: found), ms since the epoch. */
  addedAt: number;
}

export interface KeyRecord {
  /** "pgp:<fingerprint>" or "smime:<sha-256 fingerprint>". */
  id: string;
  kind: 'pgp' | 'smime';
  /**
   * The addresses the key serves, each in its comparable form (comparableAddress: local
   * part lower-cased, domain in ASCII); "@example.org" for a domain key. Records stored
   * before that form was used are brought to it when read (normalizedRecord).
   */
  addresses: string[];
  /**
   * For listings: how the record's strongest address is served (import, then harvest, then
   * discovery; then the newest). What counts for a lookup is `served`, per address.
   */
  source: KeySource;
  from?: string | undefined;
  addedAt: number;
  /**
   * Per address of `addresses`: the same key can be imported for one address and discovered
   * for another, and only the discovered one is a cache entry (keys.cacheTtl). Absent in
   * records stored before it existed: every address then has the record's source, from, addedAt.
   */
  served?: Record<string, Served> | undefined;
  material: string;
}

/** Discovered keys are cache entries; imported and harvested ones stay until removed. */
export const isDiscovered = (source: KeySource): boolean => source === 'wkd' || source === 'keyserver';

/** How a record serves an address (or "@domain"), or undefined when it does not. */
export function servedAs(record: KeyRecord, address: string): Served | undefined {
  if (!record.addresses.includes(address)) return undefined;
  return record.served?.[address] ?? { source: record.source, from: record.from, addedAt: record.addedAt };
}

export interface Claim {
  record: KeyRecord;
  /** The address itself, or "@domain" for a gateway key. */
  as: string;
  served: Served;
}

/**
 * Each record serving an address, once per way: for the address itself (newest first),
 * then for its whole domain (newest first). A record may serve both; a lookup that skips
 * the first (a stale discovered entry, say) still finds the second.
 */
export function claimsFor(records: KeyRecord[], kind: KeyRecord['kind'], address: string): Claim[] {
  // smtp-server hands over envelope domains as U-labels even when the client sent A-labels:
  // both spellings of the domain must find the key, however it was stored.
  const a = comparableAddress(address);
  const domain = `@${a.slice(a.lastIndexOf('@') + 1)}`;
  const mine = [...new Set(records)].filter((r) => r.kind === kind);
  const claims = (as: string) =>
    mine
      .flatMap((record) => {
        const served = servedAs(record, as);
        return served ? [{ record, as, served }] : [];
      })
      .sort((x, y) => y.served.addedAt - x.served.addedAt);
  return [...claims(a), ...claims(domain)];
}

/**
 * A record with its addresses (and `served` keys) in the comparable form. Records written
 * before the store compared addresses that way may hold a domain in Unicode
 * ("pat@bücher.example"): the stores pass every record they read through this, so such a
 * record still serves its addresses. Two spellings of one address become one, keeping the
 * way that is not a cache entry (imported or harvested before discovered), else the first.
 * A record already in that form is returned as it is.
 */
export function normalizedRecord(record: KeyRecord): KeyRecord {
  const addresses = Array.isArray(record.addresses) ? record.addresses : [];
  if (addresses.every((a) => comparableAddress(a) === a) && Object.keys(record.served ?? {}).every((a) => comparableAddress(a) === a)) return record;
  const served: Record<string, Served> = {};
  for (const a of addresses) {
    const way = servedAs(record, a) as Served;
    const key = comparableAddress(a);
    const before = served[key];
    if (!before || (isDiscovered(before.source) && !isDiscovered(way.source))) served[key] = way;
  }
  return { ...record, addresses: Object.keys(served), served };
}
