import { readKey } from 'openpgp';
import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { inspectPgpKey, type PgpKeyInfo } from './pgp-key.js';
import { inspectSmimeCert, type SmimeCertInfo } from './smime-cert.js';
import type { KeyRecord, KeyStore } from './store.js';
import { httpsGet, wkdLookup, type HttpsGetOptions } from './wkd.js';

export interface FoundKey<T> {
  info: T;
  source: KeyRecord['source'];
}

interface Cached<T> {
  at: number;
  found?: FoundKey<T> | undefined;
}

/**
 * Finds a usable key for a recipient: the local store (address, then domain), then the
 * configured discovery sources in order (WKD advanced then direct; a VKS keyserver).
 * Unusable keys are skipped with a log line saying why. Results are cached with a TTL,
 * misses for a shorter one.
 */
export class KeyLookup {
  private readonly pgpCache = new Map<string, Cached<PgpKeyInfo>>();

  constructor(
    private readonly config: PosternConfig,
    private readonly store: KeyStore,
    private readonly http: Omit<HttpsGetOptions, 'port' | 'timeoutMs'>,
    private readonly smimeTrust: string[],
    private readonly log: Logger,
  ) {}

  async pgp(address: string, now = Date.now()): Promise<FoundKey<PgpKeyInfo> | undefined> {
    const a = address.toLowerCase();
    const hit = this.pgpCache.get(a);
    if (hit && now - hit.at < (hit.found ? this.config.keys.cacheTtl : this.config.keys.negativeTtl)) return hit.found;
    let found: FoundKey<PgpKeyInfo> | undefined;
    for (const source of this.config.keys.discovery) {
      found = await this.fromSource(source, a).catch((err: Error) => {
        this.log.info({ event: EVENTS.keySkipped, address: a, source, reason: err.message }, 'key source failed');
        return undefined;
      });
      if (found) break;
    }
    this.pgpCache.set(a, { at: now, found });
    return found;
  }

  async smime(address: string): Promise<FoundKey<SmimeCertInfo> | undefined> {
    for (const r of await this.store.forAddress('smime', address)) {
      const info = inspectSmimeCert(r.material, this.smimeTrust);
      const covers = r.addresses.includes(address.toLowerCase()) ? info.emails.includes(address.toLowerCase()) : true;
      const reason = info.unusable ?? (covers ? undefined : `the certificate does not name ${address}`);
      if (reason) {
        this.log.info({ event: EVENTS.keySkipped, address, kind: 'smime', id: r.id, reason }, 'S/MIME certificate skipped');
        continue;
      }
      return { info, source: r.source };
    }
    return undefined;
  }

  private async fromSource(source: 'store' | 'wkd' | 'keyserver', address: string): Promise<FoundKey<PgpKeyInfo> | undefined> {
    if (source === 'store') {
      for (const r of await this.store.forAddress('pgp', address)) {
        const found = await this.usable(r.material, address, r.source, r.id, !r.addresses.includes(address));
        if (found) return found;
      }
      return undefined;
    }
    if (source === 'wkd') {
      const got = await wkdLookup(address, { ...this.http, port: this.config.keys.wkd.port, timeoutMs: this.config.keys.wkd.timeout });
      if (!got) return undefined;
      const key = await readKey({ binaryKey: new Uint8Array(got.data) }).catch(() => readKey({ armoredKey: got.data.toString('utf8') }));
      return this.usable(key.armor(), address, 'wkd', `wkd:${got.method}`, false);
    }
    const url = this.config.keys.keyserver.url;
    if (!url) return undefined;
    const u = new URL(`/vks/v1/by-email/${encodeURIComponent(address)}`, url);
    const body = await httpsGet(u.hostname, u.pathname, { ...this.http, port: Number(u.port || 443), timeoutMs: this.config.keys.keyserver.timeout });
    if (!body?.length) return undefined;
    return this.usable(body.toString('utf8'), address, 'keyserver', url, false);
  }

  private async usable(armored: string, address: string, source: KeyRecord['source'], id: string, domainKey: boolean): Promise<FoundKey<PgpKeyInfo> | undefined> {
    const info = await inspectPgpKey(armored);
    const reason = info.unusable ?? (domainKey || info.emails.includes(address) ? undefined : `the key has no user ID for ${address}`);
    if (reason) {
      this.log.info({ event: EVENTS.keySkipped, address, kind: 'pgp', id: info.fingerprint, source, from: id, reason }, 'OpenPGP key skipped');
      return undefined;
    }
    return { info, source };
  }
}
