import { describe, expect, it, vi } from 'vitest';
import { hashPassword } from '../../src/ingress/password-hash.js';
import { portalApps, type PortalApp } from '../helpers/portal-app.js';

const cookieOf = (res: { headers: Record<string, unknown> }) => /(__Host-postern=[^;]+)/.exec(String(res.headers['set-cookie'] ?? ''))?.[1];
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
const from = (ip: string) => ({ 'x-forwarded-for': ip });
const NEW_PASSWORD = 'Green-meadow-compass-77';

/** A visitor's cookie and CSRF token, from a page with a form. */
async function formOf(portal: PortalApp, url: string, ip = '198.51.100.1'): Promise<{ cookie: string; csrf: string; status: number }> {
  const res = await portal.app.inject({ method: 'GET', url, headers: from(ip) });
  return { cookie: cookieOf(res) as string, csrf: csrfOf(res.body), status: res.statusCode };
}

async function withAccount(portal: PortalApp, address: string): Promise<void> {
  await portal.files.putAccount({ address, passwordHash: await hashPassword('Blue-harbour-lantern-42'), createdAt: Date.now(), failures: [] });
}

describe('portal password reset', () => {
  const start = portalApps();

  it('reset requests are limited per client address: then 429, and no more mails go out', async () => {
    const portal = await start({ portal: { rateLimit: { resets: 3, resetsPerAccount: 100 } } });
    const addresses = ['a@home.test', 'b@home.test', 'c@home.test', 'd@home.test'];
    for (const a of addresses) await withAccount(portal, a);
    const f = await formOf(portal, '/reset', '198.51.100.7');
    const ask = (identity: string, ip = '198.51.100.7') => portal.app.inject({ method: 'POST', url: '/reset', headers: { ...from(ip), cookie: f.cookie }, payload: { csrf: f.csrf, identity } });
    const codes = [];
    for (const a of addresses) codes.push((await ask(a)).statusCode);
    expect(codes).toEqual([200, 200, 200, 429]);
    const refused = await ask('a@home.test');
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(refused.body).toContain('Too many requests');
    await vi.waitFor(() => expect(portal.queued).toHaveLength(3)); // sent after the answer
    // Another client is not held back.
    expect((await ask('d@home.test', '198.51.100.8')).statusCode).toBe(200);
    await vi.waitFor(() => expect(portal.queued).toHaveLength(4)); // sent after the answer
  });

  it('reset requests are limited per address asked for, from any client, and alike for an address without an account', async () => {
    const portal = await start({ portal: { rateLimit: { resets: 100, resetsPerAccount: 2 } } });
    await withAccount(portal, 'pat@home.test');
    const ask = async (identity: string, ip: string) => {
      const f = await formOf(portal, '/reset', ip);
      return (await portal.app.inject({ method: 'POST', url: '/reset', headers: { ...from(ip), cookie: f.cookie }, payload: { csrf: f.csrf, identity } })).statusCode;
    };
    // Each from another address: an SMS-pumping botnet, say.
    expect([await ask('pat@home.test', '203.0.113.1'), await ask('PAT@home.test', '203.0.113.2'), await ask('pat@home.test', '203.0.113.3')]).toEqual([200, 200, 429]);
    await vi.waitFor(() => expect(portal.queued).toHaveLength(2)); // sent after the answer
    expect([await ask('nobody@home.test', '203.0.113.4'), await ask('nobody@home.test', '203.0.113.5'), await ask('nobody@home.test', '203.0.113.6')]).toEqual([200, 200, 429]);
    await vi.waitFor(() => expect(portal.queued).toHaveLength(2)); // sent after the answer
  });

  it('a reset link used by two requests at once sets one password; the other is told the link is used', async () => {
    const portal = await start();
    await withAccount(portal, 'pat@home.test');
    const token = await portal.files.createToken({ kind: 'reset', recipient: 'pat@home.test', expiresAt: Date.now() + 30 * 60_000 });
    const [a, b] = await Promise.all([formOf(portal, `/r/${token}`), formOf(portal, `/r/${token}`, '198.51.100.2')]);
    const post = (f: { cookie: string; csrf: string }, password: string) => portal.app.inject({ method: 'POST', url: `/r/${token}`, headers: { cookie: f.cookie }, payload: { csrf: f.csrf, password, confirm: password } });
    const results = await Promise.all([post(a, NEW_PASSWORD), post(b, 'Other-lighthouse-river-93')]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([303, 404]);
    expect(results.find((r) => r.statusCode === 404)?.body).toContain('used already or has expired');
    const winner = results[0]?.statusCode === 303 ? NEW_PASSWORD : 'Other-lighthouse-river-93';
    const { verifyPassword } = await import('../../src/ingress/password-hash.js');
    expect(await verifyPassword(winner, (await portal.files.getAccount('pat@home.test'))!.passwordHash)).toBe(true);
  });

  it('two first visits at once set one password; the other is asked to log in', async () => {
    const portal = await start();
    const m = await portal.files.putMessage(Buffer.from('From: dr@clinic.test\r\nTo: pat@home.test\r\nSubject: R\r\n\r\nx\r\n'), { createdAt: Date.now(), expiresAt: Date.now() + 60_000, sender: 'dr@clinic.test', recipients: ['pat@home.test'], queueId: 'Q', kind: 'received' });
    const token = await portal.files.createToken({ kind: 'notice', recipient: 'pat@home.test', messageId: m.id, expiresAt: Date.now() + 60_000 });
    const [a, b] = await Promise.all([formOf(portal, `/m/${token}`), formOf(portal, `/m/${token}`, '198.51.100.2')]);
    const post = (f: { cookie: string; csrf: string }, password: string) => portal.app.inject({ method: 'POST', url: `/m/${token}`, headers: { cookie: f.cookie }, payload: { csrf: f.csrf, password, confirm: password } });
    const results = await Promise.all([post(a, NEW_PASSWORD), post(b, 'Other-lighthouse-river-93')]);
    const codes = results.map((r) => r.statusCode).sort();
    expect(codes).toEqual([200, 303]);
    expect(results.find((r) => r.statusCode === 200)?.body).toContain('A password is already set for this address');
    // Only the winner is logged in.
    expect(results.filter((r) => cookieOf(r) && cookieOf(r) !== a.cookie && cookieOf(r) !== b.cookie)).toHaveLength(1);
  });

  it('a reset ends the account\'s other sessions; the new one lives', async () => {
    const portal = await start();
    await withAccount(portal, 'pat@home.test');
    const elsewhere = await portal.loggedIn('pat@home.test');
    expect((await portal.app.inject({ method: 'GET', url: '/inbox', headers: { cookie: elsewhere } })).statusCode).toBe(200);
    const token = await portal.files.createToken({ kind: 'reset', recipient: 'pat@home.test', expiresAt: Date.now() + 30 * 60_000 });
    const f = await formOf(portal, `/r/${token}`);
    const set = await portal.app.inject({ method: 'POST', url: `/r/${token}`, headers: { cookie: f.cookie }, payload: { csrf: f.csrf, password: NEW_PASSWORD, confirm: NEW_PASSWORD } });
    expect(set.statusCode).toBe(303);
    const fresh = cookieOf(set) as string;
    expect((await portal.app.inject({ method: 'GET', url: '/inbox', headers: { cookie: fresh } })).statusCode).toBe(200);
    const old = await portal.app.inject({ method: 'GET', url: '/inbox', headers: { cookie: elsewhere } });
    expect(old.statusCode).toBe(302);
    expect(old.headers.location).toMatch(/^\/login/);
  });
});
