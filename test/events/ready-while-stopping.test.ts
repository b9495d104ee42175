import { describe, expect, it } from 'vitest';
import { adminConfig, call, startAdmin, until } from '../api/admin-helpers.js';
import { scenario } from '../helpers/scenario.js';
import { RawSmtp, testMessage } from '../helpers/smtp-client.js';

/**
 * A stopping gateway answers new sessions 421; /readyz and postern_ready must say it is
 * not ready, or a load balancer keeps sending it connections for all of shutdown.timeout.
 * A transaction under way still finishes.
 */
describe('readiness while the gateway stops', () => {
  const s = scenario();

  it('/readyz answers 503 (shutdown) and postern_ready is 0, while the transaction under way still gets its 250', async () => {
    const mx = await s.mx();
    const gw = await s.gateway({ admin: await adminConfig(), shutdown: { timeout: '10s' }, delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } });
    const admin = await startAdmin(gw);
    try {
      expect((await call(`${admin.url}/readyz`)).status).toBe(200);
      // A transaction in DATA holds the stop open.
      const c = await RawSmtp.connect(gw.port);
      expect(await c.command('EHLO client.test')).toMatch(/^250/);
      expect(await c.command('MAIL FROM:<sender@client.test>')).toMatch(/^250/);
      expect(await c.command('RCPT TO:<rcpt@dest.test>')).toMatch(/^250/);
      expect(await c.command('DATA')).toMatch(/^354/);
      const stopped = gw.stop();
      await until(() => gw.events('gateway.stopping').length > 0, 5000, 'the stop to begin');
      const r = await call(`${admin.url}/readyz`);
      expect(r.status).toBe(503);
      expect(JSON.stringify(r.body)).toContain('"check":"shutdown"');
      const metrics = await call(`${admin.url}/metrics`);
      expect(String(metrics.body)).toMatch(/^postern_ready 0$/m);
      // The stop is not a health problem for the transaction already under way.
      c.write(Buffer.concat([testMessage(), Buffer.from('.\r\n')]));
      expect(await c.read()).toMatch(/^250 /);
      c.close();
      await stopped;
      expect(gw.events('health.not-ready')).toEqual([]);
    } finally {
      await admin.close();
    }
  });
});
