import { comparableAddress } from '../common/domain-name.js';
import { MemoryCache, type SharedCache } from '../common/shared-cache.js';
import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { prepareHttps } from './https-get.js';
import { keyserverLookup } from './keyserver.js';
import { InspectedKeys } from './inspected.js';
import { splitPgpKeys } from './material.js';
import { inspectPgpKey, type PgpKeyInfo } from './pgp-key.js';
import type { SmimeCertInfo } from './smime-cert.js';
import type { SmimeTrust } from './smime-trust.js';
import { claimsFor, isDiscovered, type KeySource } from './record.js';
import type { KeyStore } from './store.js';
import { wkdLookup } from './wkd.js';

export type { KeySource } from './record.js';

export interface FoundKey<T> {
  info: T;
  /** Where the key came from: the store (import, harvest) or discovery (wkd, keyserver). */
  source: KeySource;
  /** Store record id, WKD method or keyserver URL. */
  from: string;
}

export interface KeyLookupOptions {
  keys: PosternConfig['keys'];
  store: KeyStore;
  /** Host → addresses (the delivery resolver). */
  resolve: (host: string) => Promise<string[]>;
  /** Extra CAs (PEM) for WKD and keyserver HTTPS. */
  httpsTrust: string[];
  /** What recipients' S/MIME certificates must chain to, with the CRL check. */
  smimeTrust?: SmimeTrust | undefined;
  log: Logger;
  /** Where discovery answers are kept: memory, or the Redis the instances share. */
  cache?: SharedCache | undefined;
}

interface Cached {
  at: number;
  found?: FoundKey<PgpKeyInfo> | undefined;
  /** The source failed (timeout, connection, 5xx): no answer either way. */
  failed?: boolean | undefined;
}

/** What one discovery source said: a usable key, "none there", or nothing it could be sure of. */
interface Discovered {
  found?: FoundKey<PgpKeyInfo> | undefined;
  failed?: boolean | undefined;
}

/**
 * Finds a usable key for a recipient, source by source in the configured order (store,
 * WKD advanced then direct, a VKS/HKP keyserver), each with its own timeout; a miss, an
 * error or a timeout falls through to the next source. Unusable keys are skipped with a
 * log line saying why. The store is read on every lookup (an import applies at once),
 * its records' checks reused per record version (inspected.ts); network answers are
 * cached: found keys for keys.cacheTtl — also written to the store with their source,
 * so `postern keys list` shows them and every instance sharing the store uses them, and
 * skipped there once older than that — misses for keys.negativeTtl, and a source that
 * failed (timeout, connection, TLS, 5xx) for keys.errorTtl only, so a passing outage
 * does not send a recipient down the next method for the whole negativeTtl.
 */
export class KeyLookup {
  private readonly cache: SharedCache;
  private readonly inflight = new Map<string, Promise<Discovered>>();

  private readonly inspected: InspectedKeys;

  constructor(private readonly o: KeyLookupOptions) {
    this.cache = o.cache ?? new MemoryCache();
    this.inspected = new InspectedKeys(o.smimeTrust);
    if (o.keys.discovery.some((s) => s !== 'store')) prepareHttps(o.httpsTrust);
  }

  /**
   * address as given: WKD sends the local part unchanged (l=); the store, the caches and
   * the keyserver use its comparable form (local part lower-cased, domain in ASCII), as
   * do the addresses read from keys and certificates, so the domain's two spellings
   * (smtp-server turns envelope domains into U-labels) name the same keys.
   */
  async pgp(address: string): Promise<FoundKey<PgpKeyInfo> | undefined> {
    const a = comparableAddress(address);
    for (const source of this.o.keys.discovery) {
      const found = source === 'store' ? await this.fromStore(a) : await this.cached(source, address);
      if (found) return found;
    }
    return undefined;
  }

  /** S/MIME certificates come from the store only (imported or harvested). */
  async smime(address: string, now = new Date()): Promise<FoundKey<SmimeCertInfo> | undefined> {
    const a = comparableAddress(address);
    for (const { record: r, as, served } of claimsFor(await this.o.store.forAddress('smime', a), 'smime', a)) {
      const info = this.inspected.smime(r, now.getTime());
      const reason = info.unusable ?? (as === a && !info.emails.includes(a) ? `the certificate does not name ${a}` : undefined);
      if (reason) {
        this.skipped(a, 'smime', info.fingerprint, served.source, reason);
        continue;
      }
      return { info, source: served.source, from: r.id };
    }
    return undefined;
  }

  /** The stored OpenPGP key for an address (or its domain), without discovery. */
  async pgpStored(address: string): Promise<FoundKey<PgpKeyInfo> | undefined> {
    return this.fromStore(comparableAddress(address));
  }

  private async fromStore(address: string): Promise<FoundKey<PgpKeyInfo> | undefined> {
    const now = Date.now();
    for (const { record: r, as, served } of claimsFor(await this.o.store.forAddress('pgp', address), 'pgp', address)) {
      // An address the key was discovered for is a cache entry: past cacheTtl it is asked
      // for again. One it was imported or harvested for is not, whatever else the key serves.
      if (isDiscovered(served.source) && now - served.addedAt > this.o.keys.cacheTtl) continue;
      const info = await this.inspected.pgp(r, now);
      const reason = info.unusable ?? (as !== address || info.emails.includes(address) ? undefined : `the key has no user ID for ${address}`);
      if (!reason) return { info, source: served.source, from: served.from ?? r.id };
      this.skipped(address, 'pgp', info.fingerprint, served.source, reason, served.from ?? r.id);
    }
    return undefined;
  }

  private async cached(source: 'wkd' | 'keyserver', given: string): Promise<FoundKey<PgpKeyInfo> | undefined> {
    const address = comparableAddress(given);
    const k = `keys:${source}|${address}`;
    const now = Date.now();
    const hit = await this.cache.get<Cached>(k);
    const fresh = hit && now - hit.at < this.ttl(hit);
    // A cached key may have expired since it was found.
    if (fresh && (!hit.found?.info.expiresAt || hit.found.info.expiresAt > now)) return hit.found;
    const pending = this.inflight.get(k) ?? this.discover(source, given);
    this.inflight.set(k, pending);
    try {
      const got = await pending;
      const entry: Cached = { at: Date.now(), found: got.found, failed: got.failed };
      await this.cache.set(k, entry, this.ttl(entry));
      return got.found;
    } finally {
      this.inflight.delete(k);
    }
  }

  private ttl(c: Cached): number {
    return c.found ? this.o.keys.cacheTtl : c.failed ? this.o.keys.errorTtl : this.o.keys.negativeTtl;
  }

  private async discover(source: 'wkd' | 'keyserver', given: string): Promise<Discovered> {
    const http = { resolve: this.o.resolve, trust: this.o.httpsTrust };
    const address = comparableAddress(given);
    try {
      if (source === 'wkd') {
        const got = await wkdLookup(given, { ...http, port: this.o.keys.wkd.port, timeoutMs: this.o.keys.wkd.timeout });
        if (got.tried.length) this.o.log.info({ event: EVENTS.keySourceFailed, address, source, tried: got.tried, failed: got.failed }, 'WKD: methods that gave no key');
        if (!got.data) return { failed: got.failed };
        return { found: await this.firstUsable(await splitPgpKeys(got.data), address, 'wkd', `wkd:${got.method}`) };
      }
      const ks = this.o.keys.keyserver;
      if (!ks.url) return {};
      const armored = await keyserverLookup(ks.url, ks.protocol, address, { ...http, timeoutMs: ks.timeout });
      return { found: armored ? await this.firstUsable(await splitPgpKeys(armored), address, 'keyserver', ks.url) : undefined };
    } catch (err) {
      this.o.log.info({ event: EVENTS.keySourceFailed, address, source, reason: (err as Error).message, failed: true }, 'key source failed; trying the next one');
      return { failed: true };
    }
  }

  /** The first discovered key that is usable and names the address; it is kept in the store. */
  private async firstUsable(armoredKeys: string[], address: string, source: 'wkd' | 'keyserver', from: string): Promise<FoundKey<PgpKeyInfo> | undefined> {
    for (const armored of armoredKeys) {
      const info = await inspectPgpKey(armored);
      const reason = info.unusable ?? (info.emails.includes(address) ? undefined : `the key has no user ID for ${address}`);
      if (!reason) {
        this.o.log.info({ event: EVENTS.keyFound, address, kind: 'pgp', keyId: info.fingerprint, source, from }, 'OpenPGP key discovered');
        await this.remember(info, address, source, from);
        return { info, source, from };
      }
      this.skipped(address, 'pgp', info.fingerprint, source, reason, from);
    }
    return undefined;
  }

  /**
   * A discovered key into the store (source wkd or keyserver) for this address, unless the
   * same key is there already as imported or harvested for it (or its domain). The store
   * adds the address to the key's record, keeping the addresses it served already. Not
   * being able to write it costs a lookup later, not this message: it is logged, not thrown.
   */
  private async remember(info: PgpKeyInfo, address: string, source: 'wkd' | 'keyserver', from: string): Promise<void> {
    const id = `pgp:${info.fingerprint}`;
    try {
      const same = claimsFor(await this.o.store.forAddress('pgp', address), 'pgp', address).filter((c) => c.record.id === id);
      if (same.some((c) => !isDiscovered(c.served.source))) return;
      await this.o.store.put({ id, kind: 'pgp', addresses: [address], source, from, addedAt: Date.now(), material: info.armored });
    } catch (err) {
      this.o.log.warn({ event: EVENTS.keySourceFailed, address, source, reason: `discovered key not stored: ${(err as Error).message}` }, 'discovered key not stored');
    }
  }

  private skipped(address: string, kind: 'pgp' | 'smime', keyId: string, source: KeySource, reason: string, from?: string): void {
    this.o.log.info({ event: EVENTS.keySkipped, address, kind, keyId, source, from, reason }, kind === 'pgp' ? 'OpenPGP key skipped' : 'S/MIME certificate skipped');
  }
}
