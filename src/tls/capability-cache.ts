import type { SharedCache } from '../common/shared-cache.js';
import type { TlsResultType } from './verdict.js';

export interface TlsCapability {
  starttls: boolean;
  /** 'verified', or why verification failed (RFC 8460 result type). */
  verdict: 'verified' | TlsResultType | 'unverified';
  protocol?: string | undefined;
  checkedAt: number;
}

/**
 * What each MX host offered the last time Postern connected: STARTTLS or not, and the
 * certificate verdict. Decisions and logs can foresee a TLS failure from it; the delivery
 * attempt itself always has the final word. In memory, bounded, entries expire; with a
 * shared cache (several instances on one Redis) what one instance saw is written through
 * to it, and a host this instance has not met yet is looked up there in the background
 * (reads stay synchronous: a forecast may be one message late, never in the way).
 */
export class TlsCapabilityCache {
  private readonly entries = new Map<string, TlsCapability>();
  private readonly filling = new Set<string>();

  constructor(
    private readonly ttlMs = 3_600_000,
    private readonly maxEntries = 10_000,
    private readonly shared?: SharedCache,
  ) {}

  record(host: string, port: number, capability: Omit<TlsCapability, 'checkedAt'>, now = Date.now()): void {
    const key = `${host.toLowerCase()}:${port}`;
    const entry = { ...capability, checkedAt: now };
    this.remember(key, entry);
    void this.shared?.set(`tls-capability:${key}`, entry, this.ttlMs);
  }

  private remember(key: string, entry: TlsCapability): void {
    this.entries.delete(key); // re-insert: the Map's order is the eviction order
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** Looks a host up in the shared cache once, in the background. */
  private fill(key: string): void {
    if (!this.shared || this.filling.has(key)) return;
    this.filling.add(key);
    void this.shared
      .get<TlsCapability>(`tls-capability:${key}`)
      .then((found) => {
        if (found && !this.entries.has(key)) this.remember(key, found);
      })
      .finally(() => this.filling.delete(key));
  }

  get(host: string, port: number, now = Date.now()): TlsCapability | undefined {
    const key = `${host.toLowerCase()}:${port}`;
    const c = this.entries.get(key);
    if (!c) {
      this.fill(key);
      return undefined;
    }
    if (now - c.checkedAt > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return c;
  }

  /** As get(), but a host this instance has not met is looked up in the shared cache now. */
  async lookup(host: string, port: number, now = Date.now()): Promise<TlsCapability | undefined> {
    const known = this.get(host, port, now);
    if (known || !this.shared) return known;
    const found = await this.shared.get<TlsCapability>(`tls-capability:${host.toLowerCase()}:${port}`);
    return found && now - found.checkedAt <= this.ttlMs ? found : undefined;
  }

  /** Whether the last visit says this host cannot meet the level (a forecast only). */
  foreseesFailure(host: string, port: number, level: 'none' | 'may' | 'encrypt' | 'verify', now = Date.now()): TlsCapability | undefined {
    const c = this.get(host, port, now);
    if (!c) return undefined;
    if ((level === 'encrypt' || level === 'verify') && !c.starttls) return c;
    if (level === 'verify' && c.verdict !== 'verified') return c;
    return undefined;
  }
}
