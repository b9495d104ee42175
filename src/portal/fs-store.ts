import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { seal, unseal, type MasterKey } from './crypto.js';
import { readJsonFile, removeStaleTemps, writeFileDurably } from '../common/durable-file.js';
import { HitCounter } from './hit-counter.js';
import { newMessageId, newToken } from './message-id.js';
import { RecordLocks } from '../common/record-locks.js';
import { rewrapAll } from './rotate.js';
import { addressKey, failuresEnd, MESSAGE_ID, sha256Hex, TOKEN, tokenUsable, visibleTo, type Account, type LoginFailures, type PortalMessage, type PortalStore, type TokenRecord } from './store.js';

/**
 * The portal's storage on files under <dataDir>/portal: messages/<id>.bin (ciphertext)
 * and <id>.json (metadata with the wrapped key), accounts/, tokens/, sessions/ and
 * failures/ (failed logins of addresses without an account) by hash. Every write is durable (temp file, fsync, rename). Changes to a message or an
 * account hold that record's lock (RecordLocks), so they are whole steps even between
 * processes.
 */
export class FsPortalStore implements PortalStore {
  private readonly dirs;
  private readonly locks = new RecordLocks();
  private readonly hits = new HitCounter();

  constructor(
    root: string,
    private readonly masters: MasterKey[],
  ) {
    this.dirs = { messages: join(root, 'messages'), accounts: join(root, 'accounts'), tokens: join(root, 'tokens'), sessions: join(root, 'sessions'), failures: join(root, 'failures') };
  }

  get currentKey(): MasterKey {
    return this.masters[0] as MasterKey;
  }

  async open(): Promise<void> {
    for (const d of Object.values(this.dirs)) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      await removeStaleTemps(d, Date.now());
    }
  }

  async close(): Promise<void> {}

  async putMessage(raw: Buffer, meta: Omit<PortalMessage, 'id' | 'sealed' | 'size' | 'readAt'>): Promise<PortalMessage> {
    const id = newMessageId();
    const { sealed, ciphertext } = seal(raw, this.currentKey, id);
    await writeFileDurably(join(this.dirs.messages, `${id}.bin`), ciphertext);
    const message: PortalMessage = { ...meta, id, sealed, size: raw.length, readAt: {} };
    await this.writeMeta(message);
    return message;
  }

  async get(id: string): Promise<PortalMessage | undefined> {
    if (!MESSAGE_ID.test(id)) return undefined;
    return readJsonFile<PortalMessage>(join(this.dirs.messages, `${id}.json`));
  }

  async read(id: string): Promise<Buffer> {
    const m = await this.get(id);
    if (!m) throw new Error(`portal: no message ${id}`);
    return unseal(m.sealed, await readFile(join(this.dirs.messages, `${id}.bin`)), this.masters, id);
  }

  async listFor(matches: (address: string) => boolean): Promise<PortalMessage[]> {
    return visibleTo(await this.all(), matches);
  }

  async all(): Promise<PortalMessage[]> {
    const out: PortalMessage[] = [];
    for (const name of await readdir(this.dirs.messages)) {
      if (!name.endsWith('.json')) continue;
      const m = await this.get(name.slice(0, -5));
      if (m) out.push(m);
    }
    return out;
  }

  updateMessage(id: string, change: (current: PortalMessage) => PortalMessage | undefined): Promise<PortalMessage | undefined> {
    if (!MESSAGE_ID.test(id)) return Promise.resolve(undefined);
    return this.locks.run(this.metaFile(id), async () => {
      const current = await this.get(id);
      if (!current) return undefined;
      const next = change(current);
      if (!next) return current;
      await this.writeMeta({ ...next, id });
      return next;
    });
  }

  private metaFile(id: string): string {
    return join(this.dirs.messages, `${id}.json`);
  }

  private async writeMeta(m: PortalMessage): Promise<void> {
    await writeFileDurably(this.metaFile(m.id), JSON.stringify(m));
  }

  async purgeExpired(now = Date.now()): Promise<string[]> {
    const gone: string[] = [];
    for (const m of await this.all()) {
      if (m.expiresAt > now) continue;
      // Under the message's lock: a change in flight cannot write its metadata back after this.
      await this.locks.run(this.metaFile(m.id), async () => {
        await rm(join(this.dirs.messages, `${m.id}.bin`), { force: true });
        await rm(this.metaFile(m.id), { force: true });
      });
      gone.push(m.id);
    }
    return gone;
  }

  rotate(): Promise<number> {
    return rewrapAll(this, this.masters, this.currentKey);
  }

  async getAccount(address: string): Promise<Account | undefined> {
    return readJsonFile<Account>(join(this.dirs.accounts, `${addressKey(address)}.json`));
  }

  async putAccount(account: Account): Promise<void> {
    await writeFileDurably(join(this.dirs.accounts, `${addressKey(account.address)}.json`), JSON.stringify(account));
  }

  updateAccount(address: string, change: (current: Account | undefined) => Account | undefined): Promise<Account | undefined> {
    return this.locks.run(join(this.dirs.accounts, `${addressKey(address)}.json`), async () => {
      const next = change(await this.getAccount(address));
      if (next) await this.putAccount(next);
      return next;
    });
  }

  async getLoginFailures(address: string): Promise<LoginFailures | undefined> {
    const stored = await readJsonFile<LoginFailures & { endsAt: number }>(this.failuresFile(address));
    return stored && stored.endsAt > Date.now() ? { failures: stored.failures, lockedUntil: stored.lockedUntil, pending: stored.pending } : undefined;
  }

  updateLoginFailures(address: string, change: (current: LoginFailures) => void): Promise<LoginFailures> {
    return this.locks.run(this.failuresFile(address), async () => {
      const current = (await this.getLoginFailures(address)) ?? { failures: [] };
      change(current);
      await writeFileDurably(this.failuresFile(address), JSON.stringify({ ...current, endsAt: failuresEnd(current, Date.now()) }));
      return current;
    });
  }

  private failuresFile(address: string): string {
    return join(this.dirs.failures, `${addressKey(address)}.json`);
  }

  async createToken(record: TokenRecord): Promise<string> {
    const token = newToken();
    await writeFileDurably(join(this.dirs.tokens, `${sha256Hex(token)}.json`), JSON.stringify(record));
    return token;
  }

  async getToken(token: string): Promise<TokenRecord | undefined> {
    if (!TOKEN.test(token)) return undefined;
    return readJsonFile<TokenRecord>(join(this.dirs.tokens, `${sha256Hex(token)}.json`));
  }

  consumeToken(token: string, kind: TokenRecord['kind'], now = Date.now()): Promise<TokenRecord | undefined> {
    if (!TOKEN.test(token)) return Promise.resolve(undefined);
    const file = join(this.dirs.tokens, `${sha256Hex(token)}.json`);
    return this.locks.run(file, async () => {
      const record = await readJsonFile<TokenRecord>(file);
      if (!tokenUsable(record, kind, now)) return undefined;
      await writeFileDurably(file, JSON.stringify({ ...record, usedAt: now }));
      return record;
    });
  }

  async readSession(idHash: string): Promise<string | undefined> {
    const text = await readFile(join(this.dirs.sessions, `${idHash}.json`), 'utf8').catch(() => undefined);
    const stored = text === undefined ? undefined : storedSession(text);
    if (stored?.expiresAt !== undefined && stored.expiresAt <= Date.now()) {
      await this.deleteSession(idHash); // ended: no need to wait for the sweep
      return undefined;
    }
    return stored?.json;
  }

  /** The file holds the session and when it ends, so the sweep can remove it unread by anyone. */
  async writeSession(idHash: string, json: string, ttlMs: number): Promise<void> {
    await writeFileDurably(join(this.dirs.sessions, `${idHash}.json`), JSON.stringify({ expiresAt: Date.now() + ttlMs, session: json }));
  }

  async deleteSession(idHash: string): Promise<void> {
    await rm(join(this.dirs.sessions, `${idHash}.json`), { force: true });
  }

  async sweep(now = Date.now()): Promise<{ sessions: number; tokens: number; loginFailures: number }> {
    const sessions = await sweepDir(this.dirs.sessions, now, (text, mtimeMs) => {
      const stored = storedSession(text);
      return stored?.expiresAt ?? mtimeMs + LEGACY_SESSION_MS;
    });
    const tokens = await sweepDir(this.dirs.tokens, now, (text) => (JSON.parse(text) as TokenRecord).expiresAt);
    const loginFailures = await sweepDir(this.dirs.failures, now, (text) => (JSON.parse(text) as { endsAt: number }).endsAt);
    return { sessions, tokens, loginFailures };
  }

  async countHit(bucket: string, windowMs: number, amount = 1): Promise<number> {
    return this.hits.count(bucket, windowMs, Date.now(), amount);
  }
}

/**
 * A session file written before expiries were recorded in it (the bare session JSON) is
 * kept this long after its last write: the default absolute lifetime.
 */
const LEGACY_SESSION_MS = 12 * 3_600_000;

function storedSession(text: string): { expiresAt?: number | undefined; json: string } | undefined {
  try {
    const parsed = JSON.parse(text) as { expiresAt?: unknown; session?: unknown };
    if (typeof parsed.expiresAt === 'number' && typeof parsed.session === 'string') return { expiresAt: parsed.expiresAt, json: parsed.session };
    return { json: text };
  } catch {
    return undefined;
  }
}

/**
 * Removes the .json records of a directory whose end (read from each) has passed; a
 * record that cannot be read as one ends an hour after its last write. Returns how many.
 */
async function sweepDir(dir: string, now: number, endOf: (text: string, mtimeMs: number) => number): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.json')) continue;
    const file = join(dir, name);
    const [text, info] = await Promise.all([readFile(file, 'utf8').catch(() => undefined), stat(file).catch(() => undefined)]);
    if (text === undefined || !info) continue; // gone already
    let end: number;
    try {
      end = endOf(text, info.mtimeMs);
    } catch {
      end = info.mtimeMs + 3_600_000;
    }
    if (!(end > now)) {
      await rm(file, { force: true });
      removed++;
    }
  }
  return removed;
}

