import { describe, expect, it } from 'vitest';
import { adminConfig, call, startAdmin } from '../api/admin-helpers.js';
import { closedPort } from '../helpers/closed-port.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { parseMetrics, sample } from './metrics-helpers.js';

/**
 * postern_tls_outcomes_total counts what TLS an attempt used with a server. One that never
 * reached a server (connection refused) used none: it was counted as cleartext at the
 * decision's level, which read as a TLS downgrade on an ops dashboard.
 */
describe('postern_tls_outcomes_total and attempts that reached no server', () => {
  const s = scenario();

  it('a refused connection is not counted as cleartext; a plain delivery still is', async () => {
    const mx = await s.mx();
    const closed = await closedPort();
    const gw = await s.gateway({
      admin: await adminConfig(),
      delivery: { routes: { 'down.test': { nexthop: `127.0.0.1:${closed}`, tls: 'verify' }, 'plain.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'may' } } },
    });
    const admin = await startAdmin(gw);
    try {
      expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['a@down.test'], raw: testMessage({ to: 'a@down.test' }) })).ok).toBe(true);
      expect((await sendMail(gw.port, { from: 'sender@client.test', to: ['b@plain.test'], raw: testMessage({ to: 'b@plain.test' }) })).ok).toBe(true);
      await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.to === 'a@down.test');
      await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === 'b@plain.test');
      const f = parseMetrics((await call(`${admin.url}/metrics`)).text);
      expect(sample(f, 'postern_tls_outcomes_total', { result: 'cleartext', level: 'verify' }) ?? 0).toBe(0);
      expect(sample(f, 'postern_tls_outcomes_total', { result: 'cleartext', level: 'may' })).toBe(1);
    } finally {
      await admin.close();
    }
  });
});
