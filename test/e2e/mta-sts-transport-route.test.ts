import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { writeConfigFile } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { adminConfig, call, KEYS, startAdmin } from '../api/admin-helpers.js';

const POLICY = 'defaults: { methods: [tls], tls: mta-sts, onNoMethod: defer }\nrules: []\n';

/**
 * MTA-STS (RFC 8461) validates a recipient domain's own MX hosts. A domain that
 * delivery.routes sends to a transport (a smart host, a partner's relay) never reaches
 * them, so a decision requiring MTA-STS cannot be met there: the recipient is held, and
 * the reason — in the delivery log and in `policy explain` — must say that, naming the
 * route, not blame the domain for having no policy.
 */
describe('a tls: mta-sts decision for a domain with a transport route', () => {
  const s = scenario();

  it('is held with a reason naming the route; nothing reaches the next hop', async () => {
    const mx = await s.mx();
    const policy = join(mkdtempSync(join(tmpdir(), 'postern-sts-route-')), 'policy.yaml');
    writeFileSync(policy, POLICY);
    const gw = await s.gateway({ policy: { file: policy }, delivery: { routes: { 'partner.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } }, retry: { initialDelay: '1h' } } });
    const sent = await sendMail(gw.port, { from: 'dr@client.test', to: ['dr@partner.test'], raw: testMessage({ subject: 'needs MTA-STS' }) });
    expect(sent.ok).toBe(true);
    const held = await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.to === 'dr@partner.test');
    expect(held).toMatchObject({ dsn: '4.7.5', route: 'transport' });
    expect(String(held.response)).toBe(`policy requires MTA-STS for partner.test: MTA-STS does not apply to a transport route (delivery.routes "partner.test" sends partner.test to 127.0.0.1:${mx.port}, not to its MX hosts)`);
    expect(mx.commands).toEqual([]);
  });

  it('`policy explain` says MTA-STS cannot apply there (it used to promise MTA-STS-validated TLS)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-sts-route-explain-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, POLICY);
    const config = writeConfigFile(dir, { hostname: 'postern.test', dataDir: join(dir, 'var'), policy: { file: policy }, delivery: { routes: { '*.partner.test': 'relay.partner.test:2525' } } });
    const r = await runCli(['policy', 'explain', '--config', config, '--from', 'dr@client.test', '--to', 'dr@mail.partner.test', '--to', 'dr@elsewhere.test'], {}, dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('dr@mail.partner.test\n  method:     TLS (MTA-STS required, not possible through transport route "*.partner.test": held)\n');
    expect(r.stdout).toContain('  why:        MTA-STS does not apply to a transport route: delivery.routes "*.partner.test" sends mail.partner.test to its next hop, not to its MX hosts, so delivery holds this recipient (4.7.5), or moves it to the portal when its decision allows\n');
    // A domain delivered by MX still gets MTA-STS-validated TLS.
    expect(r.stdout).toContain('dr@elsewhere.test\n  method:     TLS (MTA-STS-validated)\n');
    const json = await runCli(['policy', 'explain', '--config', config, '--from', 'dr@client.test', '--to', 'dr@mail.partner.test', '--json'], {}, dir);
    expect((JSON.parse(json.stdout) as { decisions: { reasons: string[] }[] }).decisions[0]!.reasons.at(-1)).toMatch(/^MTA-STS does not apply to a transport route: delivery\.routes "\*\.partner\.test"/);
  });

  it('the admin API explain says the same as the CLI', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-sts-route-api-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, POLICY);
    const gw = await s.gateway({ admin: await adminConfig(), policy: { file: policy }, delivery: { routes: { '*.partner.test': { nexthop: '127.0.0.1:9', tls: 'none' } } } });
    const admin = await startAdmin(gw);
    try {
      const r = await call(`${admin.url}/api/v1/policy/explain`, { method: 'POST', key: KEYS.ro, json: { from: 'dr@client.test', to: ['dr@mail.partner.test'] } });
      expect(r.status).toBe(200);
      const reasons = (r.body as { decisions: { reasons: string[] }[] }).decisions[0]!.reasons;
      expect(reasons.at(-1)).toMatch(/^MTA-STS does not apply to a transport route: delivery\.routes "\*\.partner\.test" sends mail\.partner\.test to its next hop/);
    } finally {
      await admin.close();
    }
  });
});
