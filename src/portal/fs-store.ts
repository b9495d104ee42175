import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { rewrap, seal, unseal, type MasterKey } from './crypto.js';
import { writeFileDurably } from './files.js';
import { newMessageId, newToken } from './message-id.js';
import { addressKey, MESSAGE_ID, sha256Hex, TOKEN, visibleTo, type Account, type PortalMessage, type PortalStore, type TokenRecord } from './store.js';

/**
 * The portal's storage on files under <dataDir>/portal: messages/<id>.bin (ciphertext)
 * and <id>.json (metadata with the wrapped key), accounts/, tokens/ and sessions/ by
 * hash. Every write is durable (temp file, fsync, rename).
 */
export class FsPortalStore implements PortalStore {
  private readonly dirs;
  /** One account change at a time in this process (updateAccount). */
  private accountChain: Promise<unknown> = Promise.resolve();

  constructor(
    root: string,
    private readonly masters: MasterKey[],
  ) {
    this.dirs = { messages: join(root, 'messages'), accounts: join(root, 'accounts'), tokens: join(root, 'tokens'), sessions: join(root, 'sessions') };
  }

  get currentKey(): MasterKey {
    return this.masters[0] as MasterKey;
  }

  async open(): Promise<void> {
    for (const d of Object.values(this.dirs)) await mkdir(d, { recursive: true, mode: 0o700 });
  }

  async close(): Promise<void> {}

  async putMessage(raw: Buffer, meta: Omit<PortalMessage, 'id' | 'sealed' | 'size' | 'readAt'>): Promise<PortalMessage> {
    const id = newMessageId();
    const { sealed, ciphertext } = seal(raw, this.currentKey, id);
    await writeFileDurably(join(this.dirs.messages, `${id}.bin`), ciphertext);
    const message: PortalMessage = { ...meta, id, sealed, size: raw.length, readAt: {} };
    await this.update(message);
    return message;
  }

  async get(id: string): Promise<PortalMessage | undefined> {
    if (!MESSAGE_ID.test(id)) return undefined;
    return readJson<PortalMessage>(join(this.dirs.messages, `${id}.json`));
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

  async update(m: PortalMessage): Promise<void> {
    await writeFileDurably(join(this.dirs.messages, `${m.id}.json`), JSON.stringify(m));
  }

  async purgeExpired(now = Date.now()): Promise<string[]> {
    const gone: string[] = [];
    for (const m of await this.all()) {
      if (m.expiresAt > now) continue;
      await rm(join(this.dirs.messages, `${m.id}.bin`), { force: true });
      await rm(join(this.dirs.messages, `${m.id}.json`), { force: true });
      gone.push(m.id);
    }
    return gone;
  }

  async rotate(): Promise<number> {
    let n = 0;
    for (const m of await this.all()) {
      if (m.sealed.keyId === this.currentKey.id) continue;
      m.sealed = rewrap(m.sealed, this.masters, this.currentKey, m.id);
      await this.update(m);
      n++;
    }
    return n;
  }

  async getAccount(address: string): Promise<Account | undefined> {
    return readJson<Account>(join(this.dirs.accounts, `${addressKey(address)}.json`));
  }

  async putAccount(account: Account): Promise<void> {
    await writeFileDurably(join(this.dirs.accounts, `${addressKey(account.address)}.json`), JSON.stringify(account));
  }

  updateAccount(address: string, change: (current: Account | undefined) => Account | undefined): Promise<Account | undefined> {
    const step = this.accountChain.then(async () => {
      const next = change(await this.getAccount(address));
      if (next) await this.putAccount(next);
      return next;
    });
    this.accountChain = step.catch(() => undefined);
    return step;
  }

  async createToken(record: TokenRecord): Promise<string> {
    const token = newToken();
    await writeFileDurably(join(this.dirs.tokens, `${sha256Hex(token)}.json`), JSON.stringify(record));
    return token;
  }

  async getToken(token: string): Promise<TokenRecord | undefined> {
    if (!TOKEN.test(token)) return undefined;
    return readJson<TokenRecord>(join(this.dirs.tokens, `${sha256Hex(token)}.json`));
  }

  async markTokenUsed(token: string, record: TokenRecord): Promise<void> {
    await writeFileDurably(join(this.dirs.tokens, `${sha256Hex(token)}.json`), JSON.stringify({ ...record, usedAt: Date.now() }));
  }

  async readSession(idHash: string): Promise<string | undefined> {
    return readFile(join(this.dirs.sessions, `${idHash}.json`), 'utf8').catch(() => undefined);
  }

  async writeSession(idHash: string, json: string): Promise<void> {
    await writeFileDurably(join(this.dirs.sessions, `${idHash}.json`), json);
  }

  async deleteSession(idHash: string): Promise<void> {
    await rm(join(this.dirs.sessions, `${idHash}.json`), { force: true });
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return undefined;
    throw err;
  }
}
