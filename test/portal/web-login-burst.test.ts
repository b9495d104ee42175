import { afterEach, describe, expect, it, vi } from 'vitest';
import { hashPassword } from '../../src/ingress/password-hash.js';
import { recordFailure } from '../../src/portal/web/lockout.js';
import { portalApp, type PortalApp } from '../helpers/portal-app.js';

/** Every password check waits for `hold` until the test lets them go. */
const seen = vi.hoisted(() => ({ checks: 0, active: 0, hold: undefined as Promise<void> | undefined }));

vi.mock('../../src/ingress/password-hash.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/ingress/password-hash.js')>();
  return {
    ...real,
    verifyPassword: async (password: string, encoded: string) => {
      seen.checks++;
      seen.active++;
      try {
        await seen.hold;
        return await real.verifyPassword(password, encoded);
      } finally {
        seen.active--;
      }
    },
  };
});

const PASSWORD = 'Blue-harbour-lantern-42';
type Answer = { statusCode: number; body: string; headers: Record<string, unknown> };

async function loginForm(portal: PortalApp): Promise<{ cookie: string; csrf: string }> {
  const res = await portal.app.inject({ method: 'GET', url: '/login' });
  return { cookie: /(__Host-postern=[^;]+)/.exec(String(res.headers['set-cookie']))?.[1] as string, csrf: /name="csrf" value="([^"]+)"/.exec(res.body)?.[1] as string };
}

/** Starts a login; its answer is pushed to `answers` when it comes. */
function attempt(portal: PortalApp, form: { cookie: string; csrf: string }, identity: string, password: string, answers: Answer[]): Promise<Answer> {
  const p = portal.app.inject({ method: 'POST', url: '/login', headers: { cookie: form.cookie }, payload: { csrf: form.csrf, identity, password, next: '/inbox' } }).then((r) => r as unknown as Answer);
  void p.then((r) => answers.push(r));
  return p;
}

describe('portal login: attempts at once', () => {
  let portal: PortalApp | undefined;
  afterEach(async () => {
    await portal?.close();
    portal = undefined;
    Object.assign(seen, { checks: 0, active: 0, hold: undefined });
  });

  const start = async () => {
    // Every check may run at once and wait as long as it takes: only the lock rules hold them back.
    portal = await portalApp({}, { server: { hashing: { concurrency: 64, maxWaitMs: 60_000 } } });
    await portal.files.putAccount({ address: 'pat@home.test', passwordHash: await hashPassword(PASSWORD), createdAt: Date.now(), failures: [] });
    return portal;
  };

  for (const identity of ['pat@home.test', 'nobody@home.test']) {
    it(`25 guesses at once for ${identity === 'pat@home.test' ? 'an account' : 'an address without one'} get the five checks five guesses in a row get, then the lock`, async () => {
      const app = await start();
      const form = await loginForm(app);
      let release = () => {};
      seen.hold = new Promise<void>((r) => (release = r));
      const answers: Answer[] = [];
      const all = Array.from({ length: 25 }, (_, i) => attempt(app, form, identity, `Wrong-guess-number-${i}`, answers));
      // Every attempt is either being checked or already answered before any check ends.
      await vi.waitFor(() => expect(seen.active + answers.length).toBe(25), { timeout: 20_000 });
      release();
      const codes = (await Promise.all(all)).map((r) => r.statusCode);
      expect(seen.checks).toBe(5);
      expect(codes.filter((c) => c === 401)).toHaveLength(4);
      expect(codes.filter((c) => c === 429)).toHaveLength(21);
      // The right password after the burst: locked.
      const after = await attempt(app, form, identity, PASSWORD, []);
      expect(after.statusCode).toBe(429);
      expect(after.body).toContain('Too many failed attempts');
    });
  }

  it('a right password whose check ends after a lock began (through another instance) is refused, and the lock stays', async () => {
    const app = await start();
    const form = await loginForm(app);
    let release = () => {};
    seen.hold = new Promise<void>((r) => (release = r));
    const right = attempt(app, form, 'pat@home.test', PASSWORD, []);
    await vi.waitFor(() => expect(seen.active).toBe(1), { timeout: 20_000 });
    // Five failures counted on the shared record by another instance while this one checks.
    await app.files.updateAccount('pat@home.test', (current) => {
      if (current) for (let i = 0; i < 5; i++) recordFailure(current);
      return current;
    });
    release();
    const res = await right;
    expect(res.statusCode).toBe(429);
    expect(res.headers['set-cookie'] ?? '').not.toContain('__Host-postern=');
    const account = await app.files.getAccount('pat@home.test');
    expect(account?.lockedUntil).toBeGreaterThan(Date.now());
    expect(account?.failures).toHaveLength(5);
    expect(account?.pending ?? []).toEqual([]);
  });

  it('a check refused as busy is not counted, and its reservation is taken back', async () => {
    portal = await portalApp({}, { server: { hashing: { concurrency: 1, maxWaitMs: 1 } } });
    await portal.files.putAccount({ address: 'pat@home.test', passwordHash: await hashPassword(PASSWORD), createdAt: Date.now(), failures: [] });
    const app = portal;
    let release = () => {};
    seen.hold = new Promise<void>((r) => (release = r));
    const answers: Answer[] = [];
    const forms = await Promise.all([loginForm(app), loginForm(app)]);
    const both = forms.map((f, i) => attempt(app, f, 'pat@home.test', `Wrong-guess-${i}`, answers));
    // One is checked (held); the other cannot get the one slot soon enough.
    await vi.waitFor(() => expect(answers).toHaveLength(1), { timeout: 20_000 });
    expect(answers[0]?.statusCode).toBe(503);
    release();
    await Promise.all(both);
    expect(answers[1]?.statusCode).toBe(401);
    const account = await app.files.getAccount('pat@home.test');
    expect(account?.failures).toHaveLength(1);
    expect(account?.pending ?? []).toEqual([]);
  });
});
