import type { Redis } from 'ioredis';
import { execTransaction } from '../queue/redis/lua.js';
import { newestFirst, recordNamed, recordsFor, type KeyRecord, type KeyStore } from './store.js';

/**
 * The key store on the shared Redis (queue.backend: redis), so a key imported through
 * one instance is used by all of them. Under the prefix:
 *   keys:records  HASH  record id → KeyRecord (JSON), the same records as the file store's
 *   keys:version  counter, moved by every put and remove
 * Every lookup reads the counter (one round trip) and the records again only after a
 * change, as the file store checks its directory. Redis failing fails the lookup (the
 * delivery attempt is then deferred) rather than answering from an old view.
 */
export class RedisKeyStore implements KeyStore {
  private snapshot: { version: string; records: KeyRecord[] } | undefined;
  private readonly recordsKey: string;
  private readonly versionKey: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly ownsClient = false,
  ) {
    this.recordsKey = `${prefix}keys:records`;
    this.versionKey = `${prefix}keys:version`;
  }

  async open(): Promise<void> {}

  async close(): Promise<void> {
    if (this.ownsClient) await this.redis.quit().catch(() => this.redis.disconnect());
  }

  async put(record: KeyRecord): Promise<void> {
    await execTransaction(this.redis.multi().hset(this.recordsKey, record.id, JSON.stringify(record)).incr(this.versionKey));
  }

  async all(): Promise<KeyRecord[]> {
    const version = (await this.redis.get(this.versionKey)) ?? '0';
    if (this.snapshot?.version === version) return this.snapshot.records;
    const out: KeyRecord[] = [];
    for (const json of Object.values(await this.redis.hgetall(this.recordsKey))) {
      try {
        out.push(JSON.parse(json) as KeyRecord);
      } catch {
        // an unreadable record never fails a lookup; `keys list` shows what is there
      }
    }
    // Read after the counter: a change in between is seen at the next call, never hidden.
    const records = newestFirst(out);
    this.snapshot = { version, records };
    return records;
  }

  async forAddress(kind: KeyRecord['kind'], address: string): Promise<KeyRecord[]> {
    return recordsFor(await this.all(), kind, address);
  }

  async remove(id: string): Promise<boolean> {
    const hit = recordNamed(await this.all(), id);
    if (!hit) return false;
    await execTransaction(this.redis.multi().hdel(this.recordsKey, hit.id).incr(this.versionKey));
    return true;
  }
}
