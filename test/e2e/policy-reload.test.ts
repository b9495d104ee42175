import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { adminConfig, call, KEYS, startAdmin } from '../api/admin-helpers.js';

/** A gateway's policy in use: reloaded while it runs, written inline, and what the log lines say. */
describe('policy in a running gateway', () => {
  const s = scenario();

  async function gatewayWith(policy: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<TestGateway> {
    const mx = await s.mx();
    const route = { nexthop: `127.0.0.1:${mx.port}` };
    // file: undefined drops the test helper's default policy file.
    return s.gateway({ policy: { file: undefined, ...policy }, delivery: { routes: { 'dest.test': route, 'client.test': route }, tls: { default: 'may' }, retry: { initialDelay: '1h' } }, ...extra });
  }
  const send = async (gw: TestGateway, to: string, raw = testMessage({ subject: 'hello' })) => expect((await sendMail(gw.port, { from: 'dr@client.test', to: [to], raw })).ok).toBe(true);
  const decisionFor = (gw: TestGateway, to: string) => gw.waitForLog((l) => l.event === 'policy.decision' && l.to === to);

  it('a changed policy file decides the next message; a broken change keeps the last good policy', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'postern-reload-')), 'policy.yaml');
    writeFileSync(file, 'defaults: { methods: [tls], tls: may, onNoMethod: defer }\n');
    const gw = await gatewayWith({ file });
    await send(gw, 'one@dest.test');
    expect(await decisionFor(gw, 'one@dest.test')).toMatchObject({ rule: 'default', method: 'tls' });

    writeFileSync(file, ['defaults: { methods: [tls], tls: may, onNoMethod: defer }', 'rules:', '  - { id: dest-by-portal, match: { recipientDomain: "*.dest.test" }, action: { methods: [portal] } }', '  - { id: dest-verify, match: { recipientDomain: Dest.TEST }, action: { tls: encrypt } }'].join('\n'));
    await gw.waitForLog((l) => l.event === 'policy.loaded' && l.generation === 1);
    await send(gw, 'two@dest.test');
    expect(await decisionFor(gw, 'two@dest.test')).toMatchObject({ rule: 'dest-verify', method: 'tls', tls: 'encrypt' });

    writeFileSync(file, 'rules: [{ id: broken, match: { colour: red }, action: {} }]\n');
    expect(await gw.waitForLog((l) => l.event === 'policy.rejected')).toMatchObject({ problems: [expect.stringMatching(/rules\.0\.match: unknown key colour/)] });
    await send(gw, 'three@dest.test');
    expect(await decisionFor(gw, 'three@dest.test')).toMatchObject({ rule: 'dest-verify' });
  });

  it("the admin API's policy explain answers with the policy the gateway runs, also after a broken edit", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'postern-reload-')), 'policy.yaml');
    writeFileSync(file, 'rules: [{ id: dest-portal, match: { recipientDomain: dest.test }, action: { methods: [portal] } }]\n');
    const gw = await gatewayWith({ file }, { admin: await adminConfig() });
    const admin = await startAdmin(gw);
    try {
      const explain = async () => {
        const r = await call(`${admin.url}/api/v1/policy/explain`, { method: 'POST', key: KEYS.ro, json: { from: 'dr@client.test', to: ['a@dest.test'] } });
        const body = r.body as { policyFile: string; decisions: { ruleId: string }[] };
        return [r.status, body.policyFile, body.decisions?.map((d) => d.ruleId)];
      };
      expect(await explain()).toEqual([200, file, ['dest-portal']]);
      writeFileSync(file, 'rules: [{ id: broken, match: { colour: red }, action: {} }]\n');
      await gw.waitForLog((l) => l.event === 'policy.rejected');
      // The gateway still decides with dest-portal: so does explain (it once re-read the file and answered 500).
      expect(await explain()).toEqual([200, file, ['dest-portal']]);
      writeFileSync(file, 'rules: [{ id: dest-tls, match: { recipientDomain: dest.test }, action: { methods: [tls] } }]\n');
      await gw.waitForLog((l) => l.event === 'policy.loaded' && l.generation === 1);
      expect(await explain()).toEqual([200, file, ['dest-tls']]);
    } finally {
      await admin.close();
    }
  });

  it('an inline policy section decides; policy.decision says the method the recipient really gets', async () => {
    const gw = await gatewayWith({
      defaults: { methods: ['tls'], tls: 'may', onNoMethod: 'defer' },
      recipients: { 'Pat@Dest.test': { methods: ['smime', 'pgp'], onNoMethod: 'portal' }, 'held@dest.test': { methods: ['smime'], onNoMethod: 'defer' } },
    });
    expect(gw.events('policy.loaded')[0]).toMatchObject({ source: 'inline (policy section of the config)' });
    await send(gw, 'pat@dest.test');
    // No key: nothing listed is possible, onNoMethod sends the recipient to the portal.
    const pat = await decisionFor(gw, 'pat@dest.test');
    expect(pat).toMatchObject({ rule: 'recipient:pat@dest.test', method: 'portal', candidates: ['smime', 'pgp'], onNoMethod: 'portal' });
    expect(pat.reasons).toContain('onNoMethod portal: the portal, which can serve this recipient');
    await send(gw, 'held@dest.test');
    expect(await decisionFor(gw, 'held@dest.test')).toMatchObject({ rule: 'recipient:held@dest.test', held: 'defer' });
    expect((await decisionFor(gw, 'held@dest.test')).method).toBeUndefined();
  });

  it('a message that cannot be inspected: its lines carry the rule inspect-error and the method none', async () => {
    const gw = await gatewayWith({ defaults: { methods: ['tls'], tls: 'may' }, onInspectError: 'bounce' });
    let nested = 'Content-Type: text/plain\r\n\r\nx\r\n';
    for (let i = 0; i < 30; i++) nested = `Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n${nested}\r\n--n${i}--\r\n`;
    await send(gw, 'bomb@dest.test', Buffer.from(`From: dr@client.test\r\nTo: bomb@dest.test\r\nSubject: nested\r\n${nested}`));
    const line = await gw.waitForLog((l) => l.event === 'delivery.bounced' && l.to === 'bomb@dest.test');
    expect(line).toMatchObject({ rule: 'inspect-error', method: 'none', dsn: '5.6.0', category: 'inspect' });
    expect(String(line.response)).toMatch(/message could not be inspected: MIME parts nested deeper than 20 levels/);
  });
});
