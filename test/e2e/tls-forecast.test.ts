import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminConfig, call, KEYS, startAdmin } from '../api/admin-helpers.js';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { selfSigned } from '../helpers/pki.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

/**
 * The per-MX TLS capability cache feeds decisions: once delivery has seen that a
 * domain's MX fails verification, the next decision says so (RFC 8460 type, when), a
 * recipient whose decision allows the portal goes there at once, and one that allows
 * nothing else is still tried (the attempt is the final word).
 */
describe('TLS capability forecast in decisions', () => {
  const s = scenario();
  let mx: TestMx;
  let gw: TestGateway;
  let admin: Awaited<ReturnType<typeof startAdmin>>;

  beforeAll(async () => {
    mx = await s.mx({ tls: selfSigned('mx.shaky.test') });
    const dir = mkdtempSync(join(tmpdir(), 'postern-forecast-'));
    writeFileSync(
      join(dir, 'policy.yaml'),
      ['defaults: { methods: [tls, portal], tls: verify, onNoMethod: portal }', 'recipients:', '  "strict@shaky.test": { methods: [tls], onNoMethod: defer }'].join('\n'),
    );
    gw = await s.gateway({
      admin: await adminConfig(),
      policy: { file: join(dir, 'policy.yaml') },
      delivery: { routes: { 'shaky.test': { nexthop: `127.0.0.1:${mx.port}` }, 'calm.test': { nexthop: '127.0.0.1:9' } }, tls: { default: 'may' }, retry: { initialDelay: '1h' } },
    });
    admin = await startAdmin(gw);
  });
  afterAll(async () => {
    await admin?.close();
  });

  const decisionOf = (to: string, nth: number) => gw.waitForLog(() => gw.events('policy.decision').filter((l) => l.to === to).length > nth).then(() => gw.events('policy.decision').filter((l) => l.to === to)[nth]!);

  it('first attempt: no forecast yet; TLS fails at the MX and the recipient moves to the portal', async () => {
    expect((await sendMail(gw.port, { from: 'dr@client.test', to: ['a@shaky.test'], raw: testMessage({ subject: 'one' }) })).ok).toBe(true);
    const d = await decisionOf('a@shaky.test', 0);
    expect(d).toMatchObject({ method: 'tls', rule: 'default' });
    expect((d.reasons as string[]).join(' | ')).not.toMatch(/TLS forecast/);
    expect(await gw.waitForLog((l) => l.event === 'portal.fallback' && l.to === 'a@shaky.test')).toMatchObject({ reason: 'tls:certificate-not-trusted' });
  });

  it('next message: the forecast is a reason; the portal at once where allowed, an attempt where nothing else is', async () => {
    expect((await sendMail(gw.port, { from: 'dr@client.test', to: ['a@shaky.test', 'strict@shaky.test'], raw: testMessage({ subject: 'two' }) })).ok).toBe(true);
    const a = await decisionOf('a@shaky.test', 1);
    expect(a).toMatchObject({ method: 'portal', rule: 'default' });
    expect((a.reasons as string[]).join(' | ')).toMatch(/TLS forecast: every MX failed verification when last seen: 127\.0\.0\.1:\d+ certificate-not-trusted \(seen \d{4}-\d\d-\d\dT[\d:.]+Z\); portal now instead of an attempt that would fail/);
    expect(gw.events('tls.foreseen-failure').find((l) => l.to === 'a@shaky.test')).toMatchObject({ method: 'portal', tls: 'verify', forecast: [expect.objectContaining({ result: 'certificate-not-trusted', checkedAt: expect.any(Number) })] });
    const strict = await decisionOf('strict@shaky.test', 0);
    expect(strict).toMatchObject({ method: 'tls', rule: 'recipient:strict@shaky.test' });
    expect((strict.reasons as string[]).join(' | ')).toMatch(/TLS forecast: .* certificate-not-trusted .*; tried anyway \(the attempt decides\)/);
    expect(await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.to === 'strict@shaky.test')).toMatchObject({ category: 'tls:certificate-not-trusted', rule: 'recipient:strict@shaky.test', tls: { policy: 'rule:recipient:strict@shaky.test', level: 'verify' } });
  });

  it('policy explain in the gateway process shows the same forecast', async () => {
    const r = await call(`${admin.url}/api/v1/policy/explain`, { method: 'POST', key: KEYS.ro, json: { from: 'dr@client.test', to: ['a@shaky.test', 'b@calm.test'], subject: 'Lunch' } });
    expect(r.status).toBe(200);
    const body = r.body as { tlsForecast: string; decisions: { rcpt: string; method: string; reasons: string[] }[] };
    expect(body.tlsForecast).toBe('capability cache');
    expect(body.decisions[0]).toMatchObject({ rcpt: 'a@shaky.test', method: 'portal' });
    expect(body.decisions[0]!.reasons.join(' | ')).toMatch(/TLS forecast: every MX failed verification when last seen: 127\.0\.0\.1:\d+ certificate-not-trusted/);
    expect(body.decisions[1]!.reasons.join(' | ')).not.toMatch(/TLS forecast/);
  });
});
