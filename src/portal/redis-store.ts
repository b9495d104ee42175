import type { Redis } from 'ioredis';
import { seal, unseal, type MasterKey } from './crypto.js';
import { windowStart } from './hit-counter.js';
import { newMessageId, newToken } from './message-id.js';
import { rewrapAll } from './rotate.js';
import { addressKey, failuresEnd, MESSAGE_ID, sha256Hex, TOKEN, tokenUsable, visibleTo, type Account, type LoginFailures, type PortalMessage, type PortalStore, type TokenRecord } from './store.js';

/**
 * Set the key only if it still holds what was read (compare-and-set of a whole value);
 * with ARGV[3], to expire then (epoch ms).
 */
const COMPARE_AND_SET = `
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  if ARGV[3] then
    redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
  else
    redis.call('SET', KEYS[1], ARGV[2])
  end
  return 1
end
return 0`;

/** Replace an existing key only if it still holds what was read, keeping its expiry. */
const COMPARE_AND_REPLACE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0`;

/** Content is kept this long past its expiry at most, should a purge sweep be missed. */
const EXPIRY_BACKSTOP_MS = 3_600_000;

/**
 * The portal's storage on the shared Redis (queue.backend: redis), so every instance
 * serves every message, account and session. Key layout under the prefix:
 *   portal:meta:<id>   message metadata with the wrapped data key (JSON)
 *   portal:bin:<id>    the AES-256-GCM ciphertext
 *   portal:messages    sorted set of message ids by creation time
 *   portal:acct:<hash> account (password hash, failures, lock) by hash of the address
 *   portal:fail:<hash> failed logins of an address without an account, by hash, expiring
 *                      an hour after the last (failuresEnd)
 *   portal:tok:<hash>  link token records by hash of the token, expiring with them
 *   portal:sess:<hash> sessions by hash of the session id, expiring when idle
 *   portal:hits:<bucket>:<window> rate-limit counts, expiring with their window
 */
export class RedisPortalStore implements PortalStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly masters: MasterKey[],
    private readonly ownsClient = false,
  ) {}

  get currentKey(): MasterKey {
    return this.masters[0] as MasterKey;
  }

  async open(): Promise<void> {}

  async close(): Promise<void> {
    if (this.ownsClient) this.redis.disconnect();
  }

  private key(kind: string, id?: string): string {
    return `${this.prefix}portal:${kind}${id === undefined ? '' : `:${id}`}`;
  }

  async putMessage(raw: Buffer, meta: Omit<PortalMessage, 'id' | 'sealed' | 'size' | 'readAt'>): Promise<PortalMessage> {
    const id = newMessageId();
    const { sealed, ciphertext } = seal(raw, this.currentKey, id);
    const message: PortalMessage = { ...meta, id, sealed, size: raw.length, readAt: {} };
    const until = message.expiresAt + EXPIRY_BACKSTOP_MS;
    await this.redis.multi().set(this.key('bin', id), ciphertext, 'PXAT', until).set(this.key('meta', id), JSON.stringify(message), 'PXAT', until).zadd(this.key('messages'), message.createdAt, id).exec().then(failedOn);
    return message;
  }

  async get(id: string): Promise<PortalMessage | undefined> {
    if (!MESSAGE_ID.test(id)) return undefined;
    const json = await this.redis.get(this.key('meta', id));
    return json ? (JSON.parse(json) as PortalMessage) : undefined;
  }

  async read(id: string): Promise<Buffer> {
    const m = await this.get(id);
    const ciphertext = m && (await this.redis.getBuffer(this.key('bin', id)));
    if (!m || !ciphertext) throw new Error(`portal: no message ${id}`);
    return unseal(m.sealed, ciphertext, this.masters, id);
  }

  async all(): Promise<PortalMessage[]> {
    const ids = await this.redis.zrange(this.key('messages'), '0', '-1');
    if (!ids.length) return [];
    const metas = await this.redis.mget(ids.map((id) => this.key('meta', id)));
    return metas.filter((j): j is string => Boolean(j)).map((j) => JSON.parse(j) as PortalMessage);
  }

  async listFor(matches: (address: string) => boolean): Promise<PortalMessage[]> {
    return visibleTo(await this.all(), matches);
  }

  async updateMessage(id: string, change: (current: PortalMessage) => PortalMessage | undefined): Promise<PortalMessage | undefined> {
    if (!MESSAGE_ID.test(id)) return undefined;
    const key = this.key('meta', id);
    // Optimistic, like updateAccount; only an existing message is replaced, keeping its
    // expiry: a late change never brings back a purged one.
    for (let attempt = 0; attempt < 20; attempt++) {
      const before = await this.redis.get(key);
      if (!before) return undefined;
      const current = JSON.parse(before) as PortalMessage;
      const next = change(current);
      if (!next) return current;
      if ((await this.redis.eval(COMPARE_AND_REPLACE, 1, key, before, JSON.stringify({ ...next, id }))) === 1) return next;
    }
    throw new Error('portal: message changed concurrently too often; try again');
  }

  async purgeExpired(now = Date.now()): Promise<string[]> {
    const gone: string[] = [];
    for (const id of await this.redis.zrange(this.key('messages'), '0', '-1')) {
      const m = await this.get(id);
      if (m && m.expiresAt > now) continue;
      await this.redis.multi().del(this.key('bin', id), this.key('meta', id)).zrem(this.key('messages'), id).exec().then(failedOn);
      if (m) gone.push(id);
    }
    return gone;
  }

  rotate(): Promise<number> {
    return rewrapAll(this, this.masters, this.currentKey);
  }

  async getAccount(address: string): Promise<Account | undefined> {
    const json = await this.redis.get(this.key('acct', addressKey(address)));
    return json ? (JSON.parse(json) as Account) : undefined;
  }

  async putAccount(account: Account): Promise<void> {
    await this.redis.set(this.key('acct', addressKey(account.address)), JSON.stringify(account));
  }

  updateAccount(address: string, change: (current: Account | undefined) => Account | undefined): Promise<Account | undefined> {
    return this.compareAndSet(this.key('acct', addressKey(address)), 'account', change);
  }

  async getLoginFailures(address: string): Promise<LoginFailures | undefined> {
    const json = await this.redis.get(this.key('fail', addressKey(address)));
    return json ? (JSON.parse(json) as LoginFailures) : undefined;
  }

  async updateLoginFailures(address: string, change: (current: LoginFailures) => void): Promise<LoginFailures> {
    const next = await this.compareAndSet<LoginFailures>(
      this.key('fail', addressKey(address)),
      'failed-login record',
      (current) => {
        const record = current ?? { failures: [] };
        change(record);
        return record;
      },
      (record) => failuresEnd(record, Date.now()),
    );
    return next as LoginFailures;
  }

  /**
   * Read, change and write one JSON record as one step. Optimistic: retried when another
   * instance changed it in between. `endsAt`: when the written record expires.
   */
  private async compareAndSet<T>(key: string, what: string, change: (current: T | undefined) => T | undefined, endsAt?: (next: T) => number): Promise<T | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const before = await this.redis.get(key);
      const next = change(before ? (JSON.parse(before) as T) : undefined);
      if (!next) return undefined;
      const expiry = endsAt ? [String(endsAt(next))] : [];
      if ((await this.redis.eval(COMPARE_AND_SET, 1, key, before ?? '', JSON.stringify(next), ...expiry)) === 1) return next;
    }
    throw new Error(`portal: ${what} changed concurrently too often; try again`);
  }

  async createToken(record: TokenRecord): Promise<string> {
    const token = newToken();
    await this.redis.set(this.key('tok', sha256Hex(token)), JSON.stringify(record), 'PXAT', Math.max(record.expiresAt, Date.now() + 1000));
    return token;
  }

  async getToken(token: string): Promise<TokenRecord | undefined> {
    if (!TOKEN.test(token)) return undefined;
    const json = await this.redis.get(this.key('tok', sha256Hex(token)));
    return json ? (JSON.parse(json) as TokenRecord) : undefined;
  }

  async consumeToken(token: string, kind: TokenRecord['kind'], now = Date.now()): Promise<TokenRecord | undefined> {
    if (!TOKEN.test(token)) return undefined;
    const key = this.key('tok', sha256Hex(token));
    // Optimistic: of two instances using it at once, the second finds it changed, reads
    // it again and sees it used.
    for (let attempt = 0; attempt < 20; attempt++) {
      const before = await this.redis.get(key);
      const record = before ? (JSON.parse(before) as TokenRecord) : undefined;
      if (!before || !tokenUsable(record, kind, now)) return undefined;
      if ((await this.redis.eval(COMPARE_AND_REPLACE, 1, key, before, JSON.stringify({ ...record, usedAt: now }))) === 1) return record;
    }
    throw new Error('portal: token changed concurrently too often; try again');
  }

  async readSession(idHash: string): Promise<string | undefined> {
    return (await this.redis.get(this.key('sess', idHash))) ?? undefined;
  }

  async writeSession(idHash: string, json: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.key('sess', idHash), json, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.redis.del(this.key('sess', idHash));
  }

  /** Nothing to do: sessions, tokens and failed-login records are keys that expire with them. */
  async sweep(): Promise<{ sessions: number; tokens: number; loginFailures: number }> {
    return { sessions: 0, tokens: 0, loginFailures: 0 };
  }

  async countHit(bucket: string, windowMs: number, amount = 1): Promise<number> {
    const start = windowStart(Date.now(), windowMs);
    const key = this.key('hits', `${bucket}:${start}`);
    // The key is made with its expiry first, so a count never outlives its window.
    const results = await this.redis.multi().set(key, '0', 'PXAT', start + windowMs + 1000, 'NX').incrby(key, amount).exec();
    failedOn(results);
    return Number(results?.[1]?.[1]);
  }
}

/** MULTI/EXEC reports each command's error in its result, not by rejecting. */
function failedOn(results: [Error | null, unknown][] | null): void {
  const err = results?.find(([e]) => e)?.[0];
  if (err) throw err;
  if (!results) throw new Error('portal: Redis transaction was not executed');
}
