import { readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scenario } from '../helpers/scenario.js';
import { adminConfig, startAdmin } from './admin-helpers.js';

const s = scenario();

function fetchStatus(get: typeof httpsGet | typeof httpGet, url: string, opts: Record<string, unknown>): Promise<number | string> {
  return new Promise((resolve) => {
    const req = get(url, opts, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

describe('admin.tls', () => {
  it('serves HTTPS with the gateway certificate (the development one here), and nothing in clear', async () => {
    const gw = await s.gateway({ admin: await adminConfig({ tls: { enabled: true } }) });
    const admin = await startAdmin(gw);
    try {
      expect(admin.tls).toBe(true);
      const ca = readFileSync(join(gw.dataDir, 'tls', 'dev-cert.pem'), 'utf8');
      expect(await fetchStatus(httpsGet, `https://127.0.0.1:${admin.port}/healthz`, { ca, servername: 'postern.test' })).toBe(200);
      // Not trusted without the certificate: it really is the one presented.
      expect(await fetchStatus(httpsGet, `https://127.0.0.1:${admin.port}/healthz`, { servername: 'postern.test' })).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(await fetchStatus(httpGet, `http://127.0.0.1:${admin.port}/healthz`, {})).not.toBe(200);
    } finally {
      await admin.close();
    }
  });
});
