import { existsSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { startPortalStorage, startPortalWeb } from '../../src/portal/start.js';
import { sha256Hex } from '../../src/portal/store.js';
import { SessionStore } from '../../src/portal/web/sessions.js';
import type { QueueBackend } from '../../src/queue/backend.js';
import { testConfigInput } from '../helpers/gateway.js';
import { portalApp, type PortalApp } from '../helpers/portal-app.js';
import { createTestCa } from '../helpers/pki.js';

const sessionFiles = (portal: PortalApp) => readdirSync(join(portal.dataDir, 'portal', 'sessions')).filter((f) => f.endsWith('.json'));
const cookieOf = (res: { headers: Record<string, unknown> }) => /(__Host-postern=[^;]+)/.exec(String(res.headers['set-cookie'] ?? ''))?.[1];
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;

describe('portal sessions', () => {
  let portal: PortalApp | undefined;
  afterEach(async () => {
    vi.useRealTimers();
    await portal?.close();
    portal = undefined;
  });

  it('a request without a cookie stores no session unless its page has a form', async () => {
    portal = await portalApp();
    const bogus = 'A'.repeat(43);
    for (const [method, url] of [
      ['GET', '/'],
      ['GET', '/healthz'],
      ['GET', '/inbox'],
      ['GET', '/message/AAAAAAAAAAAAAAAA'],
      ['GET', `/m/${bogus}`],
      ['GET', `/r/${bogus}`],
      ['POST', '/login'],
      ['POST', '/reset'],
      ['POST', '/logout'],
      ['POST', `/m/${bogus}`],
    ] as const) {
      const res = await portal.app.inject({ method, url, payload: method === 'POST' ? { identity: 'p@x.test', password: 'x' } : undefined });
      expect(cookieOf(res), `${method} ${url}`).toBeUndefined();
      expect(res.statusCode, `${method} ${url}`).toBeLessThan(500);
    }
    expect(sessionFiles(portal)).toEqual([]);
    // The login form needs its CSRF token: that page makes one.
    const form = await portal.app.inject({ method: 'GET', url: '/login' });
    expect(cookieOf(form)).toMatch(/^__Host-postern=[A-Za-z0-9_-]{43}$/);
    expect(sessionFiles(portal)).toHaveLength(1);
    // The same visitor again: the same session, nothing new stored.
    await portal.app.inject({ method: 'GET', url: '/reset', headers: { cookie: cookieOf(form) } });
    expect(sessionFiles(portal)).toHaveLength(1);
  });

  it('a session not logged in ends ten minutes after it began; a logged-in one lives by the idle and absolute limits', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    portal = await portalApp();
    const sessions = new SessionStore(portal.files, 15 * 60_000, 12 * 3_600_000);
    const anonymous = await sessions.create();
    const loggedIn = await sessions.create('p@patients.test');
    vi.advanceTimersByTime(5 * 60_000);
    expect(await sessions.get(anonymous.id)).toBeDefined(); // a page view does not extend it
    vi.advanceTimersByTime(6 * 60_000);
    expect(await sessions.get(anonymous.id)).toBeUndefined();
    expect((await sessions.get(loggedIn.id))?.identity).toBe('p@patients.test');
    expect(existsSync(join(portal.dataDir, 'portal', 'sessions', `${sha256Hex(anonymous.id)}.json`))).toBe(false);
  });

  it('through the web app: a logged-in session ends after 15 minutes idle, and after 12 hours however busy', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    portal = await portalApp();
    const inbox = async (cookie: string) => (await portal!.app.inject({ method: 'GET', url: '/inbox', headers: { cookie } })).statusCode;
    const idle = await portal.loggedIn('p@patients.test');
    vi.advanceTimersByTime(14 * 60_000);
    expect(await inbox(idle)).toBe(200); // a page view keeps it going
    vi.advanceTimersByTime(14 * 60_000);
    expect(await inbox(idle)).toBe(200);
    vi.advanceTimersByTime(15 * 60_000 + 1000);
    expect(await inbox(idle)).toBe(302); // to the login page

    const busy = await portal.loggedIn('p@patients.test');
    const start = Date.now();
    while (Date.now() - start < 12 * 3_600_000 - 10 * 60_000) {
      vi.advanceTimersByTime(10 * 60_000);
      expect(await inbox(busy)).toBe(200);
    }
    vi.advanceTimersByTime(10 * 60_000 + 1000);
    expect(await inbox(busy)).toBe(302);
  });

  it('a password-reset link works for 30 minutes', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    portal = await portalApp();
    await portal.files.putAccount({ address: 'p@patients.test', passwordHash: 'scrypt$x', createdAt: Date.now(), failures: [] });
    const linkOf = async () => {
      await portal!.delivery.sendReset('p@patients.test');
      return /https:\/\/[^/\s]+(\/r\/[A-Za-z0-9_-]{43})/.exec(portal!.queued.at(-1)!.raw.toString())?.[1] as string;
    };
    const early = await linkOf();
    const late = await linkOf();
    vi.advanceTimersByTime(29 * 60_000);
    expect((await portal.app.inject({ method: 'GET', url: early })).body).toContain('Set your password');
    vi.advanceTimersByTime(60_000 + 1000);
    const expired = await portal.app.inject({ method: 'GET', url: late });
    expect(expired.statusCode).toBe(404);
    expect(expired.body).toContain('used already or has expired');
    // Nor can it be used with a form fetched in time.
    const form = await portal.app.inject({ method: 'GET', url: '/login' });
    const cookie = cookieOf(form) as string;
    const post = await portal.app.inject({ method: 'POST', url: late, headers: { cookie }, payload: { csrf: csrfOf(form.body), password: 'Green-meadow-compass-77', confirm: 'Green-meadow-compass-77' } });
    expect(post.statusCode).toBe(404);
    expect((await portal.files.getAccount('p@patients.test'))?.passwordHash).toBe('scrypt$x');
  });

  it('new sessions and login attempts are limited per client address (IPv6: per /64), behind a local proxy too', async () => {
    portal = await portalApp({ portal: { rateLimit: { sessions: 3, logins: 2 } } });
    const app = portal.app;
    const from = (ip: string) => ({ 'x-forwarded-for': ip });
    for (let i = 0; i < 3; i++) expect((await app.inject({ method: 'GET', url: '/login', headers: from('198.51.100.7') })).statusCode).toBe(200);
    const refused = await app.inject({ method: 'GET', url: '/login', headers: from('198.51.100.7') });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(cookieOf(refused)).toBeUndefined();
    expect(sessionFiles(portal)).toHaveLength(3);
    // Another address is not held back; one /64 is one client.
    expect((await app.inject({ method: 'GET', url: '/login', headers: from('198.51.100.8') })).statusCode).toBe(200);
    for (let i = 1; i <= 3; i++) expect((await app.inject({ method: 'GET', url: '/login', headers: from(`2001:db8:1:2::${i}`) })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/login', headers: from('2001:db8:1:2:ffff::9') })).statusCode).toBe(429);
    // A client that is not a proxy on this machine cannot pick its address with the header.
    const direct = (n: number) => app.inject({ method: 'GET', url: '/login', remoteAddress: '203.0.113.5', headers: from(`192.0.2.${n}`) });
    for (let i = 0; i < 3; i++) expect((await direct(i)).statusCode).toBe(200);
    expect((await direct(99)).statusCode).toBe(429);

    // Logins: a session's form allows attempts until the address's limit.
    const form = await app.inject({ method: 'GET', url: '/login', headers: from('198.51.100.20') });
    const attempt = () => app.inject({ method: 'POST', url: '/login', headers: { ...from('198.51.100.20'), cookie: cookieOf(form) }, payload: { csrf: csrfOf(form.body), identity: 'nobody@home.test', password: 'wrong-password', next: '/inbox' } });
    expect([(await attempt()).statusCode, (await attempt()).statusCode, (await attempt()).statusCode]).toEqual([401, 401, 429]);
  });

  it('expired sessions and link tokens are removed from disk; live ones stay', async () => {
    portal = await portalApp();
    const store = portal.files;
    await store.writeSession('a'.repeat(64), '{"csrf":"x"}', 1000);
    await store.writeSession('b'.repeat(64), '{"csrf":"y"}', 3_600_000);
    const old = await store.createToken({ kind: 'reset', recipient: 'p@x.test', expiresAt: Date.now() + 1000 });
    const live = await store.createToken({ kind: 'notice', recipient: 'p@x.test', messageId: 'm', expiresAt: Date.now() + 3_600_000 });
    // A session file written before expiries were recorded: kept at most 12 hours.
    const legacy = join(portal.dataDir, 'portal', 'sessions', `${'c'.repeat(64)}.json`);
    writeFileSync(legacy, '{"csrf":"z","createdAt":0,"lastSeenAt":0}');
    const longAgo = new Date(Date.now() - 13 * 3_600_000);
    utimesSync(legacy, longAgo, longAgo);
    expect(await store.sweep(Date.now() + 60_000)).toEqual({ sessions: 2, tokens: 1, loginFailures: 0 });
    expect(sessionFiles(portal)).toEqual([`${'b'.repeat(64)}.json`]);
    expect(await store.readSession('b'.repeat(64))).toBe('{"csrf":"y"}');
    expect(await store.getToken(old)).toBeUndefined();
    expect(await store.getToken(live)).toBeDefined();
  });

  it('the running portal sweeps them', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'postern-portal-sweep-'));
    const config = validateConfig(testConfigInput(dataDir));
    const logger = createLogger('silent');
    const parts = (await startPortalStorage(config, dataDir, {} as QueueBackend, logger))!;
    await parts.store.writeSession('d'.repeat(64), '{"csrf":"x"}', 1);
    const file = join(dataDir, 'portal', 'sessions', `${'d'.repeat(64)}.json`);
    expect(existsSync(file)).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    const web = await startPortalWeb(config, parts, {} as QueueBackend, createTestCa().issue(['postern.test']), logger);
    try {
      await vi.waitFor(() => expect(existsSync(file)).toBe(false), { timeout: 10_000 });
    } finally {
      await web.close();
      await parts.store.close();
    }
  });
});
