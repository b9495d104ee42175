import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256Hex, type PortalStore } from '../store.js';

export const SESSION_COOKIE = '__Host-postern';

export interface Session {
  /** The identity logged in, or undefined for a visitor not yet logged in. */
  identity?: string | undefined;
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
  loggedInAt?: number | undefined;
}

/** How long a session not logged in lives (it only carries a form's CSRF token). */
export const ANONYMOUS_MS = 10 * 60_000;

/**
 * Sessions in the portal store (keyed by a hash of the id: files, or the shared Redis),
 * so every worker process and every instance knows them. A new session id is issued at
 * login; idle and absolute lifetimes are enforced on every read. A session not logged
 * in ends ANONYMOUS_MS after it began, page views or not: anyone can make one, so it
 * must not be kept long.
 */
export class SessionStore {
  constructor(
    private readonly store: PortalStore,
    private readonly idleMs: number,
    private readonly absoluteMs: number,
  ) {}

  async create(identity?: string): Promise<{ id: string; session: Session }> {
    const id = randomBytes(32).toString('base64url');
    const now = Date.now();
    const session: Session = { identity, csrf: randomBytes(24).toString('base64url'), createdAt: now, lastSeenAt: now, loggedInAt: identity ? now : undefined };
    await this.save(id, session);
    return { id, session };
  }

  async get(id: string | undefined): Promise<Session | undefined> {
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    let session: Session;
    try {
      const json = await this.store.readSession(sha256Hex(id));
      if (!json) return undefined;
      session = JSON.parse(json) as Session;
    } catch {
      return undefined;
    }
    const now = Date.now();
    if (now >= this.endOf(session)) {
      await this.destroy(id);
      return undefined;
    }
    // Touch at most once a minute: a page view need not be a disk write. A session not
    // logged in is not extended by use, so it is never touched.
    if (session.identity && now - session.lastSeenAt > 60_000) {
      session.lastSeenAt = now;
      await this.save(id, session);
    }
    return session;
  }

  async destroy(id: string): Promise<void> {
    await this.store.deleteSession(sha256Hex(id));
  }

  /** The sooner of the idle and the absolute end; for a session not logged in, also ANONYMOUS_MS. */
  private endOf(session: Session): number {
    const end = Math.min(session.lastSeenAt + this.idleMs, session.createdAt + this.absoluteMs);
    return session.identity ? end : Math.min(end, session.createdAt + ANONYMOUS_MS);
  }

  /** Kept no longer than it can live. */
  private async save(id: string, session: Session): Promise<void> {
    await this.store.writeSession(sha256Hex(id), JSON.stringify(session), this.endOf(session) - Date.now());
  }
}

export function csrfValid(session: Session | undefined, submitted: unknown): boolean {
  if (!session || !session.csrf || typeof submitted !== 'string') return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(submitted);
  return a.length === b.length && timingSafeEqual(a, b);
}
