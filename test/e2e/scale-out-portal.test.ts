import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { csrfOf, linkIn, Visitor } from '../helpers/portal-visitor.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, testPrefix } from '../queue/redis-harness.js';

const redisUp = await devRedisAvailable();

describe.skipIf(!redisUp)('scale-out: the portal on two instances sharing one Redis', () => {
  const s = scenario();
  const prefix = testPrefix();
  afterAll(() => deleteKeys(DEV_REDIS_URL, prefix));

  it('a message stored through instance A is read through instance B; a lock set on A holds on B', async () => {
    const mx = await s.mx();
    const policy = join(mkdtempSync(join(tmpdir(), 'postern-scale-portal-')), 'policy.yaml');
    writeFileSync(policy, 'defaults: { methods: [portal], onNoMethod: defer }\nrules: []\n');
    const shared = {
      queue: { backend: 'redis' },
      redis: { url: DEV_REDIS_URL, keyPrefix: prefix },
      policy: { file: policy },
      portal: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
      archive: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
      delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } },
    };
    const a = await s.gateway(shared);
    const b = await s.gateway(shared);
    const r = await sendMail(a.port, { from: 'dr@client.test', to: ['pat@home.test'], raw: testMessage({ subject: 'MRI report', body: 'SHARED-PORTAL-MARKER' }) });
    expect(r.ok).toBe(true);
    await mx.waitFor(1);
    const link = linkIn(mx.messages[0]!.raw.toString(), 'm');

    // The notice came from whichever instance delivered it; its link opens on B.
    const onB = new Visitor(`https://127.0.0.1:${b.gateway.portalPort}`);
    const form = await onB.get(link);
    expect(form.html).toContain('Set your password');
    const set = await onB.post(link, { csrf: csrfOf(form.html), password: 'Quiet-river-stone-81', confirm: 'Quiet-river-stone-81' });
    expect(set.status).toBe(303);
    expect((await onB.get(set.location as string)).html).toContain('MRI report');
    expect((await onB.get(`${set.location as string}/content`)).html).toContain('SHARED-PORTAL-MARKER');

    // Five wrong passwords through A lock the account; B refuses the right one.
    const onA = new Visitor(`https://127.0.0.1:${a.gateway.portalPort}`);
    const la = await onA.get('/login');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await onA.post('/login', { csrf: csrfOf(la.html), identity: 'pat@home.test', password: `wrong-${i}`, next: '/inbox' })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 429]);
    const fresh = new Visitor(`https://127.0.0.1:${b.gateway.portalPort}`);
    const lb = await fresh.get('/login');
    const refused = await fresh.post('/login', { csrf: csrfOf(lb.html), identity: 'pat@home.test', password: 'Quiet-river-stone-81', next: '/inbox' });
    expect(refused.status).toBe(429);
    expect(refused.html).toContain('Too many failed attempts');
  });
});
