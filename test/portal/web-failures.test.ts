import { renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { describe, expect, it } from 'vitest';
import { portalApps, type PortalApp } from '../helpers/portal-app.js';

const cookieOf = (res: { headers: Record<string, unknown> }) => /(__Host-postern=[^;]+)/.exec(String(res.headers['set-cookie'] ?? ''))?.[1] as string;
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** A visitor's cookie and CSRF token, from a page with a form. */
async function formOf(portal: PortalApp, url: string): Promise<{ cookie: string; csrf: string }> {
  const res = await portal.app.inject({ method: 'GET', url });
  expect(res.statusCode).toBe(200);
  return { cookie: cookieOf(res), csrf: csrfOf(res.body) };
}

/** The portal's own page, not fastify's JSON. */
function expectPortalPage(res: { headers: Record<string, unknown>; body: string }, title: string) {
  expect(String(res.headers['content-type'])).toMatch(/^text\/html/);
  expect(res.body).toContain(`<h2>${title}</h2>`);
  expect(res.body).not.toMatch(/"statusCode"|"message"/);
}

const portalErrors = (portal: PortalApp) => portal.logs.filter((l) => l.event === 'portal.error');

/** The portal's certificate in tests is the self-signed development one. */
const agent = new Agent({ connect: { rejectUnauthorized: false } });

/** The app on a real socket, 127.0.0.1 only; closed with it. */
async function listening(portal: PortalApp): Promise<string> {
  await portal.app.listen({ host: '127.0.0.1', port: 0 });
  return `https://127.0.0.1:${(portal.app.server.address() as AddressInfo).port}`;
}

/** What every page of the portal is sent with, whatever its status. */
const SECURITY_HEADERS = ['content-security-policy', 'x-frame-options', 'x-content-type-options', 'referrer-policy', 'strict-transport-security', 'cache-control'];

describe('portal requests that fail', () => {
  const start = portalApps();

  it('a form field sent twice is refused with a page (400), on the login form and on a notice link', async () => {
    const portal = await start();
    const login = await formOf(portal, '/login');
    const twice = await portal.app.inject({ method: 'POST', url: '/login', headers: { ...FORM, cookie: login.cookie }, payload: `csrf=${encodeURIComponent(login.csrf)}&identity=pat%40home.test&identity=x&password=p` });
    expect(twice.statusCode).toBe(400);
    expectPortalPage(twice, 'Request refused');
    expect(twice.body).not.toContain('is not a function');

    const token = await portal.files.createToken({ kind: 'notice', recipient: 'pat@home.test', messageId: 'm1', expiresAt: Date.now() + 60_000 });
    const notice = await formOf(portal, `/m/${token}`);
    const passwords = await portal.app.inject({ method: 'POST', url: `/m/${token}`, headers: { ...FORM, cookie: notice.cookie }, payload: `csrf=${encodeURIComponent(notice.csrf)}&password=Blue-harbour-lantern-42&password=x&confirm=Blue-harbour-lantern-42` });
    expect(passwords.statusCode).toBe(400);
    expectPortalPage(passwords, 'Request refused');
    expect(await portal.files.getAccount('pat@home.test')).toBeUndefined();
    // The visitor's mistake, not the portal's: nothing for the operator.
    expect(portalErrors(portal)).toEqual([]);
  });

  it('a body fastify refuses keeps its 4xx status, with a page', async () => {
    const portal = await start();
    const login = await formOf(portal, '/login');
    const badJson = await portal.app.inject({ method: 'POST', url: '/login', headers: { 'content-type': 'application/json', cookie: login.cookie }, payload: '{"csrf":' });
    expect(badJson.statusCode).toBe(400);
    expectPortalPage(badJson, 'Request refused');
    const tooLarge = await portal.app.inject({ method: 'POST', url: '/login', headers: { ...FORM, cookie: login.cookie }, payload: `csrf=${login.csrf}&identity=${'a'.repeat(1024 * 1024)}` });
    expect(tooLarge.statusCode).toBe(413);
    expectPortalPage(tooLarge, 'Too large');
  });

  it('a store that cannot be written: a 500 page that tells nothing of the cause, and a log line for the operator', async () => {
    const portal = await start();
    const token = await portal.files.createToken({ kind: 'notice', recipient: 'pat@home.test', messageId: 'm1', expiresAt: Date.now() + 60_000 });
    // A file where the sessions directory was: every session write fails (ENOTDIR), as on a failing disk.
    const sessionsDir = join(portal.dataDir, 'portal', 'sessions');
    renameSync(sessionsDir, `${sessionsDir}.moved`);
    writeFileSync(sessionsDir, '');

    for (const url of ['/login', `/m/${token}`]) {
      const res = await portal.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(500);
      expectPortalPage(res, 'Something went wrong');
      expect(res.body).toContain('Something went wrong, try again later.');
      for (const internal of [portal.dataDir, 'ENOTDIR', 'sessions', 'not a directory']) expect(res.body, url).not.toContain(internal);
    }

    const lines = portalErrors(portal);
    expect(lines.map((l) => [l.level, l.method, l.route, l.code])).toEqual([
      ['error', 'GET', '/login', 'ENOTDIR'],
      ['error', 'GET', '/m/:token', 'ENOTDIR'],
    ]);
    expect(String(lines[0]?.err)).toContain('not a directory');
    // The link's token is a password to the message: never in the log.
    expect(JSON.stringify(lines)).not.toContain(token);
  });

  it('a path the portal has no page for gets its 404 page with the headers of its other pages, for any method, and no portal.error', async () => {
    const portal = await start();
    const base = await listening(portal);
    const login = await fetch(`${base}/login`, { dispatcher: agent });
    expect(login.status).toBe(200);
    const requests: [string, string, Record<string, string>?, string?][] = [
      ['GET', '/nope'],
      ['GET', '/message/x/unknown?next=/inbox'],
      ['POST', '/message/x/unknown', FORM, 'csrf=x&text=hello'],
      ['DELETE', '/inbox'],
      ['HEAD', '/nope'],
    ];
    for (const [method, path, headers, body] of requests) {
      const res = await fetch(`${base}${path}`, { method, headers, body, dispatcher: agent });
      const what = `${method} ${path}`;
      expect(res.status, what).toBe(404);
      expect(res.headers.get('content-type'), what).toBe('text/html; charset=utf-8');
      for (const name of SECURITY_HEADERS) expect(res.headers.get(name), `${what}: ${name}`).toBe(login.headers.get(name));
      const html = await res.text();
      if (method === 'HEAD') expect(html).toBe('');
      else {
        expectPortalPage({ headers: Object.fromEntries(res.headers), body: html }, 'Page not found');
        expect(html, what).not.toMatch(/Route |not found"|fastify/i);
      }
    }
    expect(portalErrors(portal)).toEqual([]);
  });
});
