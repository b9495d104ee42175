import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { portalApps } from '../helpers/portal-app.js';

/** A 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const REMOTE_LOGO = 'https://assets.clinic.example/logo.png';

describe('portal logo', () => {
  const start = portalApps();

  it('pages show the logo the portal serves itself, and their CSP allows images from nowhere else', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'postern-logo-')), 'logo.png');
    writeFileSync(file, PNG);
    const portal = await start({ portal: { organisation: { name: 'St. Elsewhere Clinic', logoUrl: REMOTE_LOGO, logoFile: file } } });
    const page = await portal.app.inject({ method: 'GET', url: '/login' });
    expect(page.body).toContain('<img src="/logo" alt="" height="28">');
    expect(page.body).not.toContain(REMOTE_LOGO); // the notice's logo, for mail clients only
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("img-src 'self' data:;");
    expect(csp).not.toMatch(/https:|http:/);
    const logo = await portal.app.inject({ method: 'GET', url: '/logo' });
    expect(logo.statusCode).toBe(200);
    expect(logo.headers['content-type']).toBe('image/png');
    expect(logo.headers['cache-control']).toBe('public, max-age=86400');
    expect(logo.headers['x-content-type-options']).toBe('nosniff');
    expect(logo.rawPayload.equals(PNG)).toBe(true);
    // Every other answer is still kept by no one.
    expect(page.headers['cache-control']).toBe('no-store');
  });

  it('without logoFile, pages show no logo and make no request for one', async () => {
    const portal = await start({ portal: { organisation: { logoUrl: REMOTE_LOGO } } });
    const page = await portal.app.inject({ method: 'GET', url: '/login' });
    expect(page.body).not.toContain('<img');
    expect((await portal.app.inject({ method: 'GET', url: '/logo' })).statusCode).toBe(404);
  });

  it('a logo file that cannot be read stops the start, naming the key', async () => {
    await expect(start({ portal: { organisation: { logoFile: '/nonexistent/logo.svg' } } })).rejects.toThrow(/^portal\.organisation\.logoFile: cannot read \/nonexistent\/logo\.svg/);
  });
});
