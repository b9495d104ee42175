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
 * attempt itself always has the final word. In memory, bounded, entries expire.
 */
export class TlsCapabilityCache {
  private readonly entries = new Map<string, TlsCapability>();

  constructor(
    private readonly ttlMs = 3_600_000,
    private readonly maxEntries = 10_000,
  ) {}

  record(host: string, port: number, capability: Omit<TlsCapability, 'checkedAt'>, now = Date.now()): void {
    const key = `${host.toLowerCase()}:${port}`;
    this.entries.delete(key); // re-insert: the Map's order is the eviction order
    this.entries.set(key, { ...capability, checkedAt: now });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  get(host: string, port: number, now = Date.now()): TlsCapability | undefined {
    const key = `${host.toLowerCase()}:${port}`;
    const c = this.entries.get(key);
    if (!c) return undefined;
    if (now - c.checkedAt > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return c;
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
