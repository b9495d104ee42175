import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../files.js';

export const SESSION_COOKIE = '__Host-postern';

export interface Session {
  /** The identity logged in, or undefined for a visitor not yet logged in. */
  identity?: string | undefined;
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
  loggedInAt?: number | undefined;
}

/**
 * Sessions on disk (keyed by a hash of the id), shared by every worker process. A new
 * session id is issued at login; idle and absolute lifetimes are enforced on every read.
 */
export class SessionStore {
  constructor(
    private readonly dir: string,
    private readonly idleMs: number,
    private readonly absoluteMs: number,
  ) {}

  async create(identity?: string): Promise<{ id: string; session: Session }> {
    const id = randomBytes(32).toString('base64url');
    const now = Date.now();
    const session: Session = { identity, csrf: randomBytes(24).toString('base64url'), createdAt: now, lastSeenAt: now, loggedInAt: identity ? now : undefined };
    await writeFileDurably(this.path(id), JSON.stringify(session));
    return { id, session };
  }

  async get(id: string | undefined): Promise<Session | undefined> {
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    let session: Session;
    try {
      session = JSON.parse(await readFile(this.path(id), 'utf8')) as Session;
    } catch {
      return undefined;
    }
    const now = Date.now();
    if (now - session.lastSeenAt > this.idleMs || now - session.createdAt > this.absoluteMs) {
      await this.destroy(id);
      return undefined;
    }
    // Touch at most once a minute: a page view need not be a disk write.
    if (now - session.lastSeenAt > 60_000) {
      session.lastSeenAt = now;
      await writeFileDurably(this.path(id), JSON.stringify(session));
    }
    return session;
  }

  async destroy(id: string): Promise<void> {
    await rm(this.path(id), { force: true });
  }

  private path(id: string): string {
    return join(this.dir, `${createHash('sha256').update(id).digest('hex')}.json`);
  }
}

export function csrfValid(session: Session | undefined, submitted: unknown): boolean {
  if (!session || typeof submitted !== 'string') return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(submitted);
  return a.length === b.length && timingSafeEqual(a, b);
}
