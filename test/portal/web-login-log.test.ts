import { describe, expect, it } from 'vitest';
import { portalApps } from '../helpers/portal-app.js';

describe('portal login: what a failure logs', () => {
  const start = portalApps();

  it('a login field that is neither an address nor a number (a password typed in the wrong field) is never logged', async () => {
    const portal = await start();
    const form = await portal.app.inject({ method: 'GET', url: '/login' });
    const cookie = /(__Host-postern=[^;]+)/.exec(String(form.headers['set-cookie']))?.[1] as string;
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1] as string;
    const secret = 'My-Secret-Passw0rd!x';
    const res = await portal.app.inject({ method: 'POST', url: '/login', headers: { cookie, 'x-forwarded-for': '203.0.113.77' }, payload: { csrf, identity: secret, password: secret, next: '/inbox' } });
    expect(res.statusCode).toBe(401);
    const failed = portal.logs.filter((l) => l.event === 'portal.login-failed');
    expect(failed).toEqual([expect.objectContaining({ identity: '(invalid)', identityLength: secret.length, known: false, ip: '203.0.113.77' })]);
    expect(JSON.stringify(portal.logs)).not.toContain('Secret-Passw0rd');
  });
});
