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
  /** Lower-case addresses the key serves; "@example.org" for a domain key. */
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
  const a = address.toLowerCase();
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
