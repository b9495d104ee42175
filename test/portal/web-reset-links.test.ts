import { describe, expect, it, vi } from 'vitest';
import { hashPassword, verifyPassword } from '../../src/ingress/password-hash.js';
import { portalApps, type PortalApp } from '../helpers/portal-app.js';
import { linkIn } from '../helpers/portal-visitor.js';

const cookieOf = (res: { headers: Record<string, unknown> }) => /(__Host-postern=[^;]+)/.exec(String(res.headers['set-cookie'] ?? ''))?.[1];
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;

async function formOf(portal: PortalApp, url: string): Promise<{ cookie: string; csrf: string; status: number; body: string }> {
  const res = await portal.app.inject({ method: 'GET', url });
  return { cookie: cookieOf(res) as string, csrf: csrfOf(res.body), status: res.statusCode, body: res.body };
}

/** Asks for a reset link the way a visitor does, and returns the link's path from the mail queued. */
async function askForLink(portal: PortalApp, identity: string): Promise<string> {
  const before = portal.queued.length;
  const f = await formOf(portal, '/reset');
  const res = await portal.app.inject({ method: 'POST', url: '/reset', headers: { cookie: f.cookie }, payload: { csrf: f.csrf, identity } });
  expect(res.statusCode).toBe(200);
  await vi.waitFor(() => expect(portal.queued.length).toBe(before + 1), { timeout: 10_000 });
  return linkIn(portal.queued.at(-1)!.raw.toString('latin1').replace(/=\r\n/g, ''), 'r');
}

async function setPassword(portal: PortalApp, link: string, password: string) {
  const f = await formOf(portal, link);
  return portal.app.inject({ method: 'POST', url: link, headers: { cookie: f.cookie }, payload: { csrf: f.csrf, password, confirm: password } });
}

describe('portal password reset: links made before the password was set', () => {
  const start = portalApps();

  it('after a reset, an unused link asked for before it no longer opens nor sets a password', async () => {
    const portal = await start();
    await portal.files.putAccount({ address: 'pat@home.test', passwordHash: await hashPassword('Blue-harbour-lantern-42'), createdAt: Date.now() - 60_000, passwordSetAt: Date.now() - 60_000, failures: [] });
    const first = await askForLink(portal, 'pat@home.test');
    const second = await askForLink(portal, 'pat@home.test');
    expect(first).not.toBe(second);
    expect((await setPassword(portal, first, 'Owner-new-Passw0rd-1')).statusCode).toBe(303);

    const opened = await formOf(portal, second);
    expect(opened.status).toBe(404);
    expect(opened.body).toContain('Link not valid');
    // Even with a form from elsewhere (the page is refused, so the token comes from another page).
    const f = await formOf(portal, '/reset');
    const used = await portal.app.inject({ method: 'POST', url: second, headers: { cookie: f.cookie }, payload: { csrf: f.csrf, password: 'Intruder-Passw0rd-2', confirm: 'Intruder-Passw0rd-2' } });
    expect(used.statusCode).toBe(404);
    expect(cookieOf(used)).toBeUndefined();
    expect(await verifyPassword('Owner-new-Passw0rd-1', (await portal.files.getAccount('pat@home.test'))!.passwordHash)).toBe(true);

    // A link asked for after the reset works.
    const third = await askForLink(portal, 'pat@home.test');
    expect((await formOf(portal, third)).status).toBe(200);
  });

  it('of two links used at once, the password is set once', async () => {
    const portal = await start();
    await portal.files.putAccount({ address: 'pat@home.test', passwordHash: await hashPassword('Blue-harbour-lantern-42'), createdAt: Date.now() - 60_000, passwordSetAt: Date.now() - 60_000, failures: [] });
    const links = [await askForLink(portal, 'pat@home.test'), await askForLink(portal, 'pat@home.test')];
    const forms = await Promise.all(links.map((l) => formOf(portal, l)));
    const results = await Promise.all(links.map((l, i) => portal.app.inject({ method: 'POST', url: l, headers: { cookie: forms[i]!.cookie }, payload: { csrf: forms[i]!.csrf, password: `Parallel-Passw0rd-${i}x`, confirm: `Parallel-Passw0rd-${i}x` } })));
    expect(results.map((r) => r.statusCode).sort()).toEqual([303, 404]);
  });
});
