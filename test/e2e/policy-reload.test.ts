import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

/** A gateway's policy in use: reloaded while it runs, written inline, and what the log lines say. */
describe('policy in a running gateway', () => {
  const s = scenario();

  async function gatewayWith(policy: Record<string, unknown>): Promise<TestGateway> {
    const mx = await s.mx();
    const route = { nexthop: `127.0.0.1:${mx.port}` };
    // file: undefined drops the test helper's default policy file.
    return s.gateway({ policy: { file: undefined, ...policy }, delivery: { routes: { 'dest.test': route, 'client.test': route }, tls: { default: 'may' }, retry: { initialDelay: '1h' } } });
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
