import { createHash } from 'node:crypto';
import type { MasterKey, Sealed } from './crypto.js';

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
  /**
   * The recipients whose first view sends the sender a read receipt (their policy rule's
   * portalReadReceipts, else portal.readReceipts when stored). Unset on messages stored
   * before it was recorded: portal.readReceipts decides.
   */
  receiptsFor?: string[] | undefined;
  sealed: Sealed;
  size: number;
}

/** Failed logins and the lock they set: an account's, or an address's that has none. */
export interface LoginFailures {
  /** Recent failed logins (epoch ms), for the lock rules. */
  failures: number[];
  lockedUntil?: number | undefined;
  /** Password checks reserved and not yet settled (epoch ms of each reservation; see reserveAttempt). */
  pending?: number[] | undefined;
}

/** How far back the lock rules look (the hourly cap): older failures need not be kept. */
export const FAILURES_KEPT_MS = 3_600_000;

/** When an address's failure record may go: no rule looks at it after then. */
export const failuresEnd = (record: LoginFailures, now: number) => Math.max(now + FAILURES_KEPT_MS, record.lockedUntil ?? 0);

export interface Account extends LoginFailures {
  address: string;
  passwordHash: string;
  createdAt: number;
  /** When the password was last set: sessions logged in before it have ended. */
  passwordSetAt?: number | undefined;
}

export interface TokenRecord {
  kind: 'notice' | 'reset';
  recipient: string;
  messageId?: string | undefined;
  expiresAt: number;
  usedAt?: number | undefined;
  /** When it was made (reset links: one made before the password was last set is void). */
  createdAt?: number | undefined;
}

/** How long a password-reset link is valid. */
export const RESET_VALID_MS = 30 * 60_000;

/**
 * Whether a reset link still stands against the account's password: not when the
 * password was set since the link was made (by another reset link, say), so an unused
 * link left in a mailbox or an SMS cannot set it again. A link recorded before creation
 * times were is taken as made RESET_VALID_MS before its end.
 */
export function resetLinkCurrent(record: TokenRecord, account: Pick<Account, 'passwordSetAt'> | undefined): boolean {
  const madeAt = record.createdAt ?? record.expiresAt - RESET_VALID_MS;
  return !account?.passwordSetAt || madeAt > account.passwordSetAt;
}

export const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');
export const addressKey = (address: string) => sha256Hex(address.trim().toLowerCase());
export const MESSAGE_ID = /^[A-Za-z0-9_-]{16}$/;
export const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/**
 * The portal's storage: on files under <dataDir>/portal (one instance, the default) or
 * on the shared Redis (queue.backend: redis), so a message stored or a lock set through
 * one instance holds on every other. Either way message content (the whole MIME message)
 * is AES-256-GCM encrypted with a data key per message wrapped by the master key, tokens
 * and session ids are stored only as hashes, and accounts hold password hashes.
 * Nothing is cached in memory: every process, and the `postern portal` CLI, reads the
 * same records.
 */
export interface PortalStore {
  readonly currentKey: MasterKey;
  open(): Promise<void>;
  close(): Promise<void>;

  putMessage(raw: Buffer, meta: Omit<PortalMessage, 'id' | 'sealed' | 'size' | 'readAt'>): Promise<PortalMessage>;
  get(id: string): Promise<PortalMessage | undefined>;
  /** The decrypted message. */
  read(id: string): Promise<Buffer>;
  all(): Promise<PortalMessage[]>;
  /** Messages an identity can see: received by it, or replies it wrote; newest first. */
  listFor(matches: (address: string) => boolean): Promise<PortalMessage[]>;
  /**
   * Read, change and write one message's metadata as one step: a revoke and a read
   * receipt (or a recipient added) landing at once both stay. `change` gets the current
   * record and returns the new one, or undefined to leave it as it is. Resolves to the
   * record as stored afterwards; undefined when there is no such message (it is never
   * brought back).
   */
  updateMessage(id: string, change: (current: PortalMessage) => PortalMessage | undefined): Promise<PortalMessage | undefined>;
  /** Destroys content past its expiry (ciphertext and wrapped key); returns the ids. */
  purgeExpired(now?: number): Promise<string[]>;
  /** Re-wraps every data key with the current master key (after adding a new one first). */
  rotate(): Promise<number>;

  getAccount(address: string): Promise<Account | undefined>;
  putAccount(account: Account): Promise<void>;
  /**
   * Read, change and write one account as one step, so two instances counting login
   * failures at once lose none (the lock rules depend on every failure).
   */
  updateAccount(address: string, change: (current: Account | undefined) => Account | undefined): Promise<Account | undefined>;

  /**
   * Failed logins of an address that has no account, by a hash of the address (anyone
   * may try any address; none is stored in clear). The lock rules run on them exactly as
   * on an account's, so neither the answers nor when a lock ends tell which addresses
   * have one. Kept until failuresEnd after the last change, and shared by every instance
   * on Redis. Changed as one step, as updateAccount.
   */
  getLoginFailures(address: string): Promise<LoginFailures | undefined>;
  updateLoginFailures(address: string, change: (current: LoginFailures) => void): Promise<LoginFailures>;

  /** A fresh token (256 bits); only its hash is stored. */
  createToken(record: TokenRecord): Promise<string>;
  getToken(token: string): Promise<TokenRecord | undefined>;
  /**
   * Uses a single-use token: marks it used and resolves to its record, as one step, only
   * when it is of `kind`, unused and not expired; otherwise undefined. Of two requests
   * with the same token at once (on any instances), one gets the record.
   */
  consumeToken(token: string, kind: TokenRecord['kind'], now?: number): Promise<TokenRecord | undefined>;

  /** Session records by the hash of the session id; ttlMs bounds how long one is kept. */
  readSession(idHash: string): Promise<string | undefined>;
  writeSession(idHash: string, json: string, ttlMs: number): Promise<void>;
  deleteSession(idHash: string): Promise<void>;
  /**
   * Removes sessions, link tokens and failed-login records past their end (anyone can
   * make a session or try an address, so they must not pile up on the spool's disk);
   * returns how many. Redis expires them itself.
   */
  sweep(now?: number): Promise<{ sessions: number; tokens: number; loginFailures: number }>;

  /**
   * Counts one event in `bucket` for a fixed window of windowMs and returns the count in
   * the current window so far (rate limits). On Redis every instance shares the count;
   * on files it is kept in this process's memory (counting on disk would be the very
   * write load a limit is there to stop). `amount`: what this event counts for (default
   * one; the bytes of a reply).
   */
  countHit(bucket: string, windowMs: number, amount?: number): Promise<number>;
}

/** Whether a token record may still be used (consumeToken of both stores). */
export function tokenUsable(record: TokenRecord | undefined, kind: TokenRecord['kind'], now: number): record is TokenRecord {
  return Boolean(record && record.kind === kind && !record.usedAt && record.expiresAt > now);
}

/** Shared by both stores: the list rules of listFor. */
export function visibleTo(messages: PortalMessage[], matches: (address: string) => boolean): PortalMessage[] {
  return messages.filter((m) => (m.kind === 'received' ? m.recipients.some(matches) : matches(m.sender))).sort((x, y) => y.createdAt - x.createdAt);
}

