import { describe, expect, it, vi } from 'vitest';
import { hashPassword } from '../../src/ingress/password-hash.js';
import type { PortalStore } from '../../src/portal/store.js';
import { portalApps, type PortalApp } from '../helpers/portal-app.js';

const cookieOf = (res: { headers: Record<string, unknown> }) => /(__Host-postern=[^;]+)/.exec(String(res.headers['set-cookie'] ?? ''))?.[1] as string;
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;

describe('portal password reset: the answer does not wait for the sending', () => {
  const start = portalApps();

  /** A portal whose reset tokens are written only when the test lets them (a slow disk's fsync). */
  const slowTokens = async (fail = false) => {
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    let writes = 0;
    const portal = await start({}, {
      wrap: (files) =>
        new Proxy(files, {
          get(target, prop, receiver) {
            if (prop !== 'createToken') return Reflect.get(target, prop, receiver) as unknown;
            return async (...args: Parameters<PortalStore['createToken']>) => {
              writes++;
              await held;
              if (fail) throw new Error('disk full');
              return target.createToken(...args);
            };
          },
        }) as PortalStore,
    });
    await portal.files.putAccount({ address: 'pat@home.test', passwordHash: await hashPassword('Blue-harbour-lantern-42'), createdAt: Date.now(), failures: [] });
    return { portal, release, writes: () => writes };
  };

  const ask = async (portal: PortalApp, identity: string) => {
    const form = await portal.app.inject({ method: 'GET', url: '/reset' });
    return portal.app.inject({ method: 'POST', url: '/reset', headers: { cookie: cookieOf(form) }, payload: { csrf: csrfOf(form.body), identity } });
  };

  it('for an account, the answer comes while its link is still being made, and is the answer an unknown address gets; the sending is logged when done', async () => {
    const { portal, release, writes } = await slowTokens();
    let answered: Awaited<ReturnType<typeof ask>> | undefined;
    void ask(portal, 'pat@home.test').then((r) => (answered = r));
    // The link is being made (held), and the visitor has the answer already.
    await vi.waitFor(() => expect(writes()).toBe(1), { timeout: 10_000 });
    await vi.waitFor(() => expect(answered).toBeDefined(), { timeout: 10_000 });
    expect(portal.queued).toHaveLength(0);
    expect(portal.logs.filter((l) => l.event === 'portal.reset')).toEqual([]);
    const unknown = await ask(portal, 'nobody@home.test');
    const page = (r: { body: string }) => r.body.replace(/name="csrf" value="[^"]+"/, '');
    expect([answered!.statusCode, unknown.statusCode]).toEqual([200, 200]);
    expect(page(answered!)).toBe(page(unknown));
    release();
    await vi.waitFor(() => expect(portal.queued).toHaveLength(1), { timeout: 10_000 });
    await vi.waitFor(() => expect(portal.logs.filter((l) => l.event === 'portal.reset')).toEqual([expect.objectContaining({ identity: 'pat@home.test', via: 'mail' })]), { timeout: 10_000 });
  });

  it('a sending that fails after the answer is logged as an error', async () => {
    const { portal, release, writes } = await slowTokens(true);
    let answered: Awaited<ReturnType<typeof ask>> | undefined;
    void ask(portal, 'pat@home.test').then((r) => (answered = r));
    await vi.waitFor(() => expect(writes()).toBe(1), { timeout: 10_000 });
    await vi.waitFor(() => expect(answered?.statusCode).toBe(200), { timeout: 10_000 });
    release();
    await vi.waitFor(() => expect(portal.logs.find((l) => l.event === 'portal.reset')).toMatchObject({ level: 'error', identity: 'pat@home.test', err: 'disk full' }), { timeout: 10_000 });
    expect(portal.queued).toHaveLength(0);
  });
});
