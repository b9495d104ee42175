import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { hashPassword } from '../../src/ingress/password-hash.js';
import { addressKey } from '../../src/portal/store.js';
import { portalApp, type PortalApp } from '../helpers/portal-app.js';

/**
 * What the web app asks of the password hasher: the hashes it verifies against, and how
 * many checks run at once. A test may hold every check until it lets them go.
 */
const seen = vi.hoisted(() => ({ verifiedAgainst: [] as string[], active: 0, peak: 0, delayMs: 0, hold: undefined as Promise<void> | undefined }));

vi.mock('../../src/ingress/password-hash.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/ingress/password-hash.js')>();
  return {
    ...real,
    verifyPassword: async (password: string, encoded: string) => {
      seen.verifiedAgainst.push(encoded);
      seen.peak = Math.max(seen.peak, ++seen.active);
      try {
        await seen.hold;
        await new Promise((r) => setTimeout(r, seen.delayMs));
        return await real.verifyPassword(password, encoded);
      } finally {
        seen.active--;
      }
    },
  };
});

const PASSWORD = 'Blue-harbour-lantern-42';
/** A moment on no round minute: a lock's end computed from a fixed window would show. */
const ODD_MOMENT = Date.UTC(2031, 4, 17, 9, 43, 27, 391);

/** An anonymous visitor's cookie and CSRF token, from the login form. */
async function loginForm(portal: PortalApp): Promise<{ cookie: string; csrf: string }> {
  const res = await portal.app.inject({ method: 'GET', url: '/login' });
  const cookie = /(__Host-postern=[^;]+)/.exec(String(res.headers['set-cookie']))?.[1] as string;
  const csrf = /name="csrf" value="([^"]+)"/.exec(res.body)?.[1] as string;
  return { cookie, csrf };
}

async function logIn(portal: PortalApp, identity: string, password: string) {
  const { cookie, csrf } = await loginForm(portal);
  return portal.app.inject({ method: 'POST', url: '/login', headers: { cookie }, payload: { csrf, identity, password, next: '/inbox' } });
}

describe('portal login', () => {
  let portal: PortalApp | undefined;
  afterEach(async () => {
    vi.useRealTimers();
    await portal?.close();
    portal = undefined;
    Object.assign(seen, { verifiedAgainst: [], active: 0, peak: 0, delayMs: 0, hold: undefined });
  });

  it('an unknown address costs what a wrong password costs: the dummy hash has the real parameters', async () => {
    portal = await portalApp();
    await portal.files.putAccount({ address: 'pat@home.test', passwordHash: await hashPassword(PASSWORD), createdAt: Date.now(), failures: [] });
    const wrong = await logIn(portal, 'pat@home.test', 'not-the-password-1');
    const unknown = await logIn(portal, 'nobody@home.test', 'not-the-password-1');
    expect([wrong.statusCode, unknown.statusCode]).toEqual([401, 401]);
    expect(unknown.body).toContain('The address or the password is not right.');
    expect(seen.verifiedAgainst).toHaveLength(2);
    const [real, dummy] = seen.verifiedAgainst.map((h) => h.split('$'));
    // scrypt$N$r$p$salt$hash: the same work factor, and a real salt and key.
    expect(dummy?.slice(0, 4)).toEqual(real?.slice(0, 4));
    expect(Buffer.from(dummy?.[4] ?? '', 'base64').equals(Buffer.alloc(16))).toBe(false);
  });

  it('at most two password checks run at once, known addresses and unknown alike; the others wait their turn', async () => {
    // Waits long enough for every turn: this is about how many run at once.
    portal = await portalApp({}, { server: { hashing: { concurrency: 2, maxWaitMs: 60_000 } } });
    await portal.files.putAccount({ address: 'pat@home.test', passwordHash: await hashPassword(PASSWORD), createdAt: Date.now(), failures: [] });
    seen.delayMs = 300; // long enough that all the attempts overlap
    const attempts = await Promise.all(Array.from({ length: 8 }, (_, i) => logIn(portal!, i % 2 ? 'pat@home.test' : `nobody${i}@home.test`, `wrong-password-${i}`)));
    expect(attempts.map((r) => r.statusCode)).toEqual(Array(8).fill(401));
    expect(seen.verifiedAgainst).toHaveLength(8);
    expect(seen.peak).toBe(2);
  });

  it('a check that cannot start soon enough gets 503 "busy, try again", and no failure is counted for it', async () => {
    portal = await portalApp({}, { server: { hashing: { concurrency: 1, maxWaitMs: 1 } } });
    await portal.files.putAccount({ address: 'pat@home.test', passwordHash: await hashPassword(PASSWORD), createdAt: Date.now(), failures: [] });
    let release = () => {};
    seen.hold = new Promise<void>((r) => (release = r));
    const forms = await Promise.all([loginForm(portal), loginForm(portal), loginForm(portal)]);
    const post = (f: { cookie: string; csrf: string }) => portal!.app.inject({ method: 'POST', url: '/login', headers: { cookie: f.cookie }, payload: { csrf: f.csrf, identity: 'pat@home.test', password: 'wrong-password', next: '/inbox' } });
    const pending = forms.map((f) => post(f));
    // Two of them cannot get the one slot while the first check is held.
    const settled: { statusCode: number; body: string; headers: Record<string, unknown> }[] = [];
    for (const p of pending) void p.then((r) => settled.push(r));
    await vi.waitFor(() => expect(settled).toHaveLength(2), { timeout: 20_000 });
    expect(settled.map((r) => r.statusCode)).toEqual([503, 503]);
    expect(settled[0]?.body).toMatch(/busy/i);
    expect(settled[0]?.headers['retry-after']).toBeDefined();
    release();
    await vi.waitFor(() => expect(settled).toHaveLength(3), { timeout: 20_000 });
    expect(settled[2]?.statusCode).toBe(401);
    expect((await portal.files.getAccount('pat@home.test'))?.failures).toHaveLength(1);
  });

  it('an address without an account gets the answers an account gets, on a clock at an odd time: wrong password four times, then locked until the same moment; the same work each time', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    portal = await portalApp();
    await portal.files.putAccount({ address: 'pat@home.test', passwordHash: await hashPassword(PASSWORD), createdAt: Date.now(), failures: [] });
    const attempts = async (identity: string) => {
      // Both runs start at the same odd moment, and take the same steps of the clock.
      vi.setSystemTime(ODD_MOMENT);
      const { cookie, csrf } = await loginForm(portal!);
      const out: { status: number; body: string }[] = [];
      const checksBefore = seen.verifiedAgainst.length;
      for (let i = 1; i <= 7; i++) {
        vi.advanceTimersByTime(7_003);
        const res = await portal!.app.inject({ method: 'POST', url: '/login', headers: { cookie, 'x-forwarded-for': '198.51.100.44', 'user-agent': 'Mozilla/5.0 (test)' }, payload: { csrf, identity, password: `wrong-password-${i}`, next: '/inbox' } });
        // The page less what differs by nature: the address typed and the form's token. The lock's end is compared as it is.
        out.push({ status: res.statusCode, body: res.body.replaceAll(identity.toLowerCase(), 'ADDRESS').replace(csrf, 'CSRF') });
      }
      return { out, checks: seen.verifiedAgainst.length - checksBefore };
    };
    const known = await attempts('PAT@home.test');
    const unknown = await attempts('NOBODY@home.test');
    expect(known.out.map((r) => r.status)).toEqual([401, 401, 401, 401, 429, 429, 429]);
    // Ten minutes after the fifth failure, to the millisecond: not on a round ten minutes.
    expect(known.out[4]?.body).toContain(`Try again after ${new Date(ODD_MOMENT + 5 * 7_003 + 10 * 60_000).toUTCString()}, or reset your password.`);
    expect(unknown.out).toEqual(known.out);
    // Five password checks each: a locked account is not checked, and neither is a ghost.
    expect([known.checks, unknown.checks]).toEqual([5, 5]);
    // "From where" is in the audit trail, for both.
    const failed = portal.logs.filter((l) => l.event === 'portal.login-failed');
    expect(failed).toHaveLength(10);
    for (const l of failed) expect(l).toMatchObject({ ip: '198.51.100.44', userAgent: 'Mozilla/5.0 (test)' });
    expect(failed.at(-1)).toMatchObject({ identity: 'nobody@home.test', known: false });
    const locks = portal.logs.filter((l) => l.event === 'portal.locked');
    expect(locks).toEqual([expect.objectContaining({ identity: 'pat@home.test', ip: '198.51.100.44' }), expect.objectContaining({ identity: 'nobody@home.test', known: false, ip: '198.51.100.44' })]);
  });

  it('"four failures, eleven minutes, one failure" locks an address without an account as it locks an account, and both locks end alike', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    portal = await portalApp();
    await portal.files.putAccount({ address: 'pat@home.test', passwordHash: await hashPassword(PASSWORD), createdAt: Date.now(), failures: [] });
    const attempt = async (identity: string, i: number) => {
      // A fresh form each time: a session not logged in lasts ten minutes.
      const { cookie, csrf } = await loginForm(portal!);
      const res = await portal!.app.inject({ method: 'POST', url: '/login', headers: { cookie }, payload: { csrf, identity, password: `wrong-password-${i}`, next: '/inbox' } });
      return { status: res.statusCode, body: res.body.replaceAll(identity, 'ADDRESS').replace(csrf, 'CSRF') };
    };
    const run = async (identity: string) => {
      vi.setSystemTime(ODD_MOMENT);
      const out = [];
      for (let i = 1; i <= 4; i++) {
        vi.advanceTimersByTime(5_001);
        out.push(await attempt(identity, i));
      }
      vi.advanceTimersByTime(11 * 60_000);
      out.push(await attempt(identity, 5)); // the fifth in the hour: locked
      vi.advanceTimersByTime(10 * 60_000 + 1);
      out.push(await attempt(identity, 6)); // the lock has ended: "not right" again
      return out;
    };
    const known = await run('pat@home.test');
    const unknown = await run('nobody@home.test');
    expect(known.map((r) => r.status)).toEqual([401, 401, 401, 401, 429, 401]);
    expect(known[4]?.body).toContain(`Try again after ${new Date(ODD_MOMENT + 4 * 5_001 + 11 * 60_000 + 10 * 60_000).toUTCString()}`);
    expect(unknown).toEqual(known);
    // Counted by a hash of the address, never the address itself.
    const dir = join(portal.dataDir, 'portal', 'failures');
    expect(readdirSync(dir)).toEqual([`${addressKey('nobody@home.test')}.json`]);
    expect(readFileSync(join(dir, readdirSync(dir)[0] as string), 'utf8')).not.toContain('nobody');
  });

  it('a login is logged with the client\'s address and user agent', async () => {
    portal = await portalApp();
    await portal.files.putAccount({ address: 'pat@home.test', passwordHash: await hashPassword(PASSWORD), createdAt: Date.now(), failures: [] });
    const { cookie, csrf } = await loginForm(portal);
    const res = await portal.app.inject({ method: 'POST', url: '/login', headers: { cookie, 'x-forwarded-for': '2001:db8::7', 'user-agent': 'Agent\u0007With\nControls' }, payload: { csrf, identity: 'pat@home.test', password: PASSWORD, next: '/inbox' } });
    expect(res.statusCode).toBe(303);
    expect(portal.logs.find((l) => l.event === 'portal.login')).toMatchObject({ identity: 'pat@home.test', ip: '2001:db8::7', userAgent: 'Agent With Controls' });
  });
});
