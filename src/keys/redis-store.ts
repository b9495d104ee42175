import type { Redis } from 'ioredis';
import { execTransaction } from '../queue/redis/lua.js';
import { mergeRecord } from './merge.js';
import { normalizedRecord } from './record.js';
import { newestFirst, recordNamed, recordsFor, type KeyRecord, type KeyStore } from './store.js';

/**
 * Replace one record only if it still holds what was read ('' for none), and move the
 * version counter with it: a put merges with the record it read, so a put by another
 * instance in between must make it read and merge again, not be overwritten.
 */
const PUT_IF_UNCHANGED = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (current == false and ARGV[2] == '') or current == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  redis.call('INCR', KEYS[2])
  return 1
end
return 0`;

/** Concurrent puts of one key settle in a few rounds; this many means something is wrong. */
const PUT_ATTEMPTS = 20;

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
    for (let attempt = 0; attempt < PUT_ATTEMPTS; attempt++) {
      const before = await this.redis.hget(this.recordsKey, record.id);
      const next = await mergeRecord(parsed(before), record);
      if ((await this.redis.eval(PUT_IF_UNCHANGED, 2, this.recordsKey, this.versionKey, record.id, before ?? '', JSON.stringify(next))) === 1) return;
    }
    throw new Error(`keys: ${record.id} changed concurrently too often; try again`);
  }

  async all(): Promise<KeyRecord[]> {
    const version = (await this.redis.get(this.versionKey)) ?? '0';
    if (this.snapshot?.version === version) return this.snapshot.records;
    // an unreadable record never fails a lookup; `keys list` shows what is there
    const out = Object.values(await this.redis.hgetall(this.recordsKey)).flatMap((json) => parsed(json) ?? []);
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

/** A stored record (addresses in the comparable form), or undefined for none or one that cannot be read (a put replaces it). */
function parsed(json: string | null | undefined): KeyRecord | undefined {
  if (!json) return undefined;
  try {
    return normalizedRecord(JSON.parse(json) as KeyRecord);
  } catch {
    return undefined;
  }
}
