import { inspectPgpKey, type PgpKeyInfo } from './pgp-key.js';
import { inspectSmimeCert, type SmimeCertInfo } from './smime-cert.js';
import type { SmimeTrust } from './smime-trust.js';
import type { KeyRecord } from './store.js';

/** How long an inspection of a stored key is reused before the whole check runs again. */
const RECHECK_MS = 5 * 60_000;

interface Seen<T> {
  at: number;
  revision: number;
  info: T;
}

/**
 * What inspecting each stored record found, kept per record version: the stores hand out
 * the same record objects until a record is added or removed (see store.ts), so a record
 * that changed is a new object and is inspected afresh. Reading an armored key and
 * checking its self-signatures, or parsing a certificate and its chain, cost
 * milliseconds — per message, for every recipient. A result is reused for a few
 * minutes, never past the key's or certificate's expiry, and not after the CRLs in force
 * changed; then the whole check runs again.
 */
export class InspectedKeys {
  private readonly pgpSeen = new WeakMap<KeyRecord, Seen<PgpKeyInfo>>();
  private readonly smimeSeen = new WeakMap<KeyRecord, Seen<SmimeCertInfo>>();

  constructor(private readonly trust: SmimeTrust | undefined) {}

  async pgp(record: KeyRecord, now = Date.now()): Promise<PgpKeyInfo> {
    const hit = this.pgpSeen.get(record);
    const revision = this.revision();
    if (hit && this.fresh(hit, hit.info.expiresAt, now, revision)) return hit.info;
    const info = await inspectPgpKey(record.material, new Date(now));
    this.pgpSeen.set(record, { at: now, revision, info });
    return info;
  }

  smime(record: KeyRecord, now = Date.now()): SmimeCertInfo {
    const hit = this.smimeSeen.get(record);
    const revision = this.revision();
    if (hit && this.fresh(hit, hit.info.validUntil, now, revision)) return hit.info;
    const info = inspectSmimeCert(record.material, this.trust, new Date(now));
    this.smimeSeen.set(record, { at: now, revision, info });
    return info;
  }

  private fresh(hit: Seen<unknown>, until: number | undefined, now: number, revision: number): boolean {
    return now - hit.at < RECHECK_MS && hit.at <= now && (until === undefined || now < until) && hit.revision === revision;
  }

  /**
   * Which CRLs are in force. Asked before every use of a kept result, and it looks at the
   * CRL files first (at most once a minute, crl.ts): a refreshed CRL must reach a result
   * kept from before it, not wait for the next full inspection. Read before inspecting,
   * so a result is never labelled with CRLs newer than the ones it was checked against.
   */
  private revision(): number {
    return this.trust?.revision() ?? 0;
  }
}
