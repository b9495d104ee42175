import type { Redis } from 'ioredis';

/**
 * A cache that several Postern instances can share: TLS capabilities, key-discovery
 * results and MTA-STS "no policy" answers learnt by one instance serve all. In memory
 * for a single instance; on the shared Redis when the queue is there. A cache is never
 * the only copy of anything: a failing Redis makes it a miss, never an error, and the
 * memory one drops entries before their expiry when full. So nothing whose early loss
 * weakens security belongs here: MTA-STS policies have a store of their own
 * (src/tls/sts-policy.ts).
 */
export interface SharedCache {
  get<T>(key: string): Promise<T | undefined>;
  /** Whether the entry was stored (false: Redis did not take it; the cache carries on as a miss). */
  set(key: string, value: unknown, ttlMs: number): Promise<boolean>;
  delete(key: string): Promise<void>;
}

/**
 * Bounded, with expiry; the Map's insertion order is the eviction order (the oldest
 * write goes first, reads do not refresh an entry): for entries that may be lost at
 * any time at the cost of asking again.
 */
export class MemoryCache implements SharedCache {
  private readonly entries = new Map<string, { until: number; value: unknown }>();

  constructor(private readonly maxEntries = 10_000) {}

  async get<T>(key: string): Promise<T | undefined> {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (Date.now() >= e.until) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value as T;
  }

  async set(key: string, value: unknown, ttlMs: number): Promise<boolean> {
    this.entries.delete(key);
    this.entries.set(key, { until: Date.now() + ttlMs, value });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    return true;
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }
}

/** JSON values under `<prefix>cache:<key>`, expiring in Redis. */
export class RedisCache implements SharedCache {
  /** Failed Redis calls, for tests and metrics; the cache carries on as a miss. */
  errors = 0;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async get<T>(key: string): Promise<T | undefined> {
    try {
      const json = await this.redis.get(`${this.prefix}cache:${key}`);
      return json ? (JSON.parse(json) as T) : undefined;
    } catch {
      this.errors++;
      return undefined;
    }
  }

  async set(key: string, value: unknown, ttlMs: number): Promise<boolean> {
    if (ttlMs <= 0) return true; // already expired: nothing to keep
    try {
      await this.redis.set(`${this.prefix}cache:${key}`, JSON.stringify(value), 'PX', Math.ceil(ttlMs));
      return true;
    } catch {
      this.errors++;
      return false;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.redis.del(`${this.prefix}cache:${key}`);
    } catch {
      this.errors++;
    }
  }
}
