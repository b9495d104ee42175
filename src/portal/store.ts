import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { seal, unseal, rewrap, type MasterKey, type Sealed } from './crypto.js';
import { writeFileDurably } from './files.js';

export interface PortalMessage {
  id: string;
  createdAt: number;
  expiresAt: number;
  /** The original sender (replies go to them). */
  sender: string;
  recipients: string[];
  /** The queue id the message came in with, for tracing. */
  queueId: string;
  kind: 'received' | 'reply';
  /** For a reply: the portal message it answers. */
  inReplyTo?: string | undefined;
  revoked?: { at: number; by: string } | undefined;
  /** First view per recipient (read receipts). */
  readAt: Record<string, number>;
  sealed: Sealed;
  size: number;
}

export interface Account {
  address: string;
  passwordHash: string;
  createdAt: number;
  /** Recent failed logins (epoch ms), for the lock rules. */
  failures: number[];
  lockedUntil?: number | undefined;
}

export interface TokenRecord {
  kind: 'notice' | 'reset';
  recipient: string;
  messageId?: string | undefined;
  expiresAt: number;
  usedAt?: number | undefined;
}

const hash = (text: string) => createHash('sha256').update(text).digest('hex');
export const addressKey = (address: string) => hash(address.trim().toLowerCase());

/**
 * The portal's storage under <dataDir>/portal. Message content (the whole MIME message:
 * subject, body, attachments) is AES-256-GCM encrypted with a data key per message,
 * wrapped by the master key; the files on disk reveal no content. Tokens are stored
 * only as hashes. Accounts hold scrypt password hashes.
 */
export class PortalStore {
  private readonly dirs;

  constructor(
    root: string,
    private readonly masters: MasterKey[],
  ) {
    this.dirs = { messages: join(root, 'messages'), accounts: join(root, 'accounts'), tokens: join(root, 'tokens'), sessions: join(root, 'sessions') };
  }

  get currentKey(): MasterKey {
    return this.masters[0] as MasterKey;
  }

  /**
   * Nothing is cached in memory: every worker process (and the `postern portal` CLI)
   * reads the same files, so a revoke or a reply made through one is seen by all.
   */
  async open(): Promise<void> {
    for (const d of Object.values(this.dirs)) await mkdir(d, { recursive: true, mode: 0o700 });
  }

  get sessionDir(): string {
    return this.dirs.sessions;
  }

  async putMessage(raw: Buffer, meta: Omit<PortalMessage, 'id' | 'sealed' | 'size' | 'readAt'>): Promise<PortalMessage> {
    const id = randomBytes(12).toString('base64url'); // 16 characters
    const { sealed, ciphertext } = seal(raw, this.currentKey, id);
    await writeFileDurably(join(this.dirs.messages, `${id}.bin`), ciphertext);
    const message: PortalMessage = { ...meta, id, sealed, size: raw.length, readAt: {} };
    await this.saveMeta(message);
    return message;
  }

  async get(id: string): Promise<PortalMessage | undefined> {
    if (!/^[A-Za-z0-9_-]{16}$/.test(id)) return undefined;
    try {
      return JSON.parse(await readFile(join(this.dirs.messages, `${id}.json`), 'utf8')) as PortalMessage;
    } catch {
      return undefined;
    }
  }

  async read(id: string): Promise<Buffer> {
    const m = await this.get(id);
    if (!m) throw new Error(`portal: no message ${id}`);
    return unseal(m.sealed, await readFile(join(this.dirs.messages, `${id}.bin`)), this.masters, id);
  }

  /** Messages an identity can see: received by it, or replies it wrote; newest first. */
  async listFor(matches: (address: string) => boolean): Promise<PortalMessage[]> {
    return (await this.all()).filter((m) => (m.kind === 'received' ? m.recipients.some(matches) : matches(m.sender))).sort((x, y) => y.createdAt - x.createdAt);
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
    await this.saveMeta(m);
  }

  /** Destroys content past its expiry: the ciphertext and the wrapped key go. */
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

  /** Re-wraps every data key with the current master key (after adding a new one first). */
  async rotate(): Promise<number> {
    let n = 0;
    for (const m of await this.all()) {
      if (m.sealed.keyId === this.currentKey.id) continue;
      m.sealed = rewrap(m.sealed, this.masters, this.currentKey, m.id);
      await this.saveMeta(m);
      n++;
    }
    return n;
  }

  async getAccount(address: string): Promise<Account | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dirs.accounts, `${addressKey(address)}.json`), 'utf8')) as Account;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async putAccount(account: Account): Promise<void> {
    await writeFileDurably(join(this.dirs.accounts, `${addressKey(account.address)}.json`), JSON.stringify(account));
  }

  /** A fresh token (256 bits); only its hash is stored. */
  async createToken(record: TokenRecord): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await writeFileDurably(join(this.dirs.tokens, `${hash(token)}.json`), JSON.stringify(record));
    return token;
  }

  async getToken(token: string): Promise<TokenRecord | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    try {
      return JSON.parse(await readFile(join(this.dirs.tokens, `${hash(token)}.json`), 'utf8')) as TokenRecord;
    } catch {
      return undefined;
    }
  }

  async markTokenUsed(token: string, record: TokenRecord): Promise<void> {
    await writeFileDurably(join(this.dirs.tokens, `${hash(token)}.json`), JSON.stringify({ ...record, usedAt: Date.now() }));
  }

  private async saveMeta(m: PortalMessage): Promise<void> {
    await writeFileDurably(join(this.dirs.messages, `${m.id}.json`), JSON.stringify(m));
  }
}
