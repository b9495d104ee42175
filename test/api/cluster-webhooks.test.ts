import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey } from 'openpgp';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { verifySignature } from '../../src/events/webhooks-sign.js';
import { loadMasterKeys } from '../../src/portal/keys.js';
import { openPortalStore } from '../../src/portal/open-store.js';
import { freePort, WebhookReceiver } from '../events/webhook-receiver.js';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { adminConfig, call, KEYS, until } from './admin-helpers.js';

const SECRET = 'whsec-cluster-primary-71be3a';

/**
 * With several workers the admin listener runs in the primary, so what its calls change
 * (keys.imported, keys.removed, portal.revoked) is logged there: the primary has a
 * webhook outbox of its own (<dataDir>/webhooks/primary) that sends them.
 */
describe('webhooks of changes made through the admin API of a cluster (workers: 2)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cluster-hooks-'));
  const receiver = new WebhookReceiver();
  let gw: ChildGateway | undefined;
  afterAll(async () => {
    gw?.killAll();
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keys.imported, keys.removed and portal.revoked reach the webhook, once each and signed, also when the receiver comes up only later', async () => {
    receiver.port = await freePort();
    const input = testConfigInput(join(dir, 'data'), {
      workers: 2,
      log: { level: 'info' },
      admin: await adminConfig(),
      webhooks: [{ url: receiver.url, events: ['keys.*', 'portal.revoked'], secret: SECRET, timeout: '2s', retry: { initialDelay: '200ms', maxDelay: '500ms', giveUpAfter: '1h' } }],
    });
    gw = await startChildGateway(dir, input);
    await until(() => gw!.logs.some((l) => l.event === 'gateway.ready' && l.workers === 2), 20_000, 'both workers ready');
    const url = `http://127.0.0.1:${gw.logs.find((l) => l.event === 'admin.listen')?.port as number}/api/v1`;

    // A portal message to withdraw, in the store every process reads.
    const config = validateConfig(input);
    const store = await openPortalStore(config, config.dataDir, (await loadMasterKeys(config, config.dataDir)).keys);
    const m = await store.putMessage(Buffer.from('Subject: x\r\n\r\nsecret\r\n'), { createdAt: Date.now(), expiresAt: Date.now() + 86_400_000, sender: 'dr@client.test', recipients: ['pat@dest.test'], queueId: '01CLUSTERHOOKS0000', kind: 'received' });
    await store.close();

    // The receiver is down for the first calls: their events wait in the primary's outbox.
    const { publicKey } = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'pat@dest.test' }], format: 'armored' });
    const imported = await call(`${url}/keys`, { method: 'POST', key: KEYS.op, json: { material: publicKey } });
    const keyId = (imported.body as { results: { id: string }[] }).results[0]?.id;
    expect(imported.status).toBe(200);
    expect(await call(`${url}/portal/${m.id}/revoke`, { method: 'POST', key: KEYS.op })).toMatchObject({ status: 200, body: { by: 'ops', already: false } });
    await until(() => gw!.logs.filter((l) => l.event === 'webhook.failed').length >= 2, 10_000, 'attempts while the receiver is down');
    expect(gw.logs.filter((l) => l.event === 'webhook.failed').every((l) => l.process === 'primary')).toBe(true);

    await receiver.start();
    expect(await call(`${url}/keys/${keyId}`, { method: 'DELETE', key: KEYS.op })).toMatchObject({ status: 200 });
    await until(() => receiver.received.length >= 3, 15_000, 'three events');
    await new Promise((r) => setTimeout(r, 800)); // nothing more comes
    expect(receiver.received.map((r) => r.json.event).sort()).toEqual(['keys.imported', 'keys.removed', 'portal.revoked']);
    expect(receiver.received.find((r) => r.json.event === 'portal.revoked')?.json.data).toMatchObject({ portalId: m.id, by: 'ops' });
    expect(receiver.received.find((r) => r.json.event === 'keys.removed')?.json.data).toMatchObject({ actor: 'ops' });
    for (const r of receiver.received) expect(verifySignature(String(r.headers['postern-signature']), r.body, SECRET)).toBe(true);
    expect(new Set(receiver.ids()).size).toBe(3);
  });
});
