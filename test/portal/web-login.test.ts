import { afterEach, describe, expect, it, vi } from 'vitest';
import { hashPassword } from '../../src/ingress/password-hash.js';
import { portalApp, type PortalApp } from '../helpers/portal-app.js';

/** What the web app asks of the password hasher: the hashes it verifies against. */
const seen = vi.hoisted(() => ({ verifiedAgainst: [] as string[] }));

vi.mock('../../src/ingress/password-hash.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/ingress/password-hash.js')>();
  return {
    ...real,
    verifyPassword: async (password: string, encoded: string) => {
      seen.verifiedAgainst.push(encoded);
      return real.verifyPassword(password, encoded);
    },
  };
});

const PASSWORD = 'Blue-harbour-lantern-42';

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
    await portal?.close();
    portal = undefined;
    seen.verifiedAgainst.length = 0;
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
});
