import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { subscriptionMatcher } from '../../src/events/webhooks-events.js';
import { signBody, verifySignature } from '../../src/events/webhooks-sign.js';
import { testConfigInput } from '../helpers/gateway.js';
import { capturedLogger, eventually, startWebhookSender, tempDir } from './helpers.js';
import { freePort, WebhookReceiver } from './webhook-receiver.js';

const SECRET = 'whsec-test-3f9a1c0e7b5d2a48';

function hookConfig(dataDir: string, url: string, events: string[], retry = { initialDelay: '100ms', maxDelay: '400ms', giveUpAfter: '1h' }) {
  return validateConfig(testConfigInput(dataDir, { webhooks: [{ url, events, secret: SECRET, timeout: '2s', retry }] }));
}

const outboxText = (dataDir: string) => {
  const dir = join(dataDir, 'webhooks', '0');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('');
};

describe('webhook signatures and subscriptions', () => {
  it('a signature verifies for its body and secret only, and only while fresh', () => {
    const body = '{"event":"delivered"}';
    const now = 1_800_000_000;
    const header = signBody(SECRET, body, now);
    expect(header).toMatch(/^t=1800000000,v1=[0-9a-f]{64}$/);
    expect(verifySignature(header, body, SECRET, { now })).toBe(true);
    expect(verifySignature(header, body.replace('delivered', 'bounced'), SECRET, { now })).toBe(false);
    expect(verifySignature(header, body, `${SECRET}x`, { now })).toBe(false);
    expect(verifySignature(header, body, SECRET, { now: now + 301 })).toBe(false);
    expect(verifySignature(header.replace('t=1800000000', 't=1800000001'), body, SECRET, { now })).toBe(false);
  });

  it('subscriptions match webhook names and event codes, with globs; check-config names a pattern that matches nothing', () => {
    const m = subscriptionMatcher(['delivered', 'portal.*', 'dsn.queued']);
    expect(['delivery.sent', 'portal.view', 'portal.locked', 'dsn.queued'].map(m)).toEqual([true, true, true, true]);
    expect(['delivery.deferred', 'gateway.start', 'webhook.failed'].map(m)).toEqual([false, false, false]);
    expect(subscriptionMatcher(['delivery.*'])('delivery.bounced')).toBe(true);
    expect(subscriptionMatcher(['*'])('delivery.connection')).toBe(false); // not a webhook event at all
    expect(() => hookConfig(tempDir(), 'http://127.0.0.1:1/', ['deliverd'])).toThrow(/webhooks\.0\.events\.0: "deliverd" matches no webhook event/);
    expect(() => validateConfig(testConfigInput(tempDir(), { webhooks: [{ url: 'http://127.0.0.1:1/', events: ['delivered'], secret: 'short' }] }))).toThrow(/webhooks\.0\.secret: at least 16 characters/);
  });
});

describe('webhook delivery', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  const sender = (dataDir: string, url: string, events: string[], retry?: Parameters<typeof hookConfig>[3]) => startWebhookSender(cleanup, { config: hookConfig(dataDir, url, events, retry), dataDir });

  const delivered = (logger: ReturnType<typeof capturedLogger>['logger'], n: string) => logger.info({ event: 'delivery.sent', queueId: n, to: `${n}@dest.test`, status: 'sent', password: 'not-for-receivers' }, 'delivered');

  it('receiver down, then answering 503, then up: every event arrives once, also across restarts of the sender', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const receiver = new WebhookReceiver(port);
    const url = receiver.url;

    const a = await sender(dataDir, url, ['delivered']);
    for (const n of ['A1', 'A2', 'A3']) delivered(a.logger, n);
    await eventually(() => a.lines.filter((l) => l.event === 'webhook.failed').length >= 3, 'failed attempts while the receiver is down');
    await a.close();

    const b = await sender(dataDir, url, ['delivered']);
    for (const n of ['B1', 'B2']) delivered(b.logger, n);
    let refusals = 0;
    receiver.status = () => (++refusals <= 4 ? 503 : 200);
    await receiver.start();
    cleanup.push(() => receiver.stop());
    await eventually(() => receiver.received.length === 5, 'all five deliveries');
    expect(b.lines.some((l) => l.event === 'webhook.failed' && l.status === 503)).toBe(true);
    await eventually(() => b.lines.filter((l) => l.event === 'webhook.delivered').length === 5, 'delivered lines');
    await b.close();

    // A third start finds everything done in the outbox: nothing is sent again.
    const c = await sender(dataDir, url, ['delivered']);
    delivered(c.logger, 'C1');
    await eventually(() => receiver.received.length === 6, 'the new event');
    await new Promise((r) => setTimeout(r, 500));
    const queueIds = receiver.received.map((r) => r.json.data.queueId).sort();
    expect(queueIds).toEqual(['A1', 'A2', 'A3', 'B1', 'B2', 'C1']);
    expect(new Set(receiver.ids()).size).toBe(6);
    for (const r of receiver.received) {
      expect(verifySignature(String(r.headers['postern-signature']), r.body, SECRET)).toBe(true);
      expect(r.headers['postern-event']).toBe('delivered');
      expect(r.json).toMatchObject({ event: 'delivered', code: 'delivery.sent', id: r.headers['postern-delivery'] });
      expect(r.body).not.toContain('not-for-receivers');
    }
    const logged = [...a.printed, ...b.printed, ...c.printed].join('');
    expect(logged).not.toContain(SECRET);
    expect(logged).not.toContain('in-the-url'); // the URL's query (a token) is not logged, only its host
    expect(outboxText(dataDir)).not.toContain(SECRET);
  });

  it('a delivery failing past giveUpAfter is given up, logged, and not retried after a restart', async () => {
    const dataDir = tempDir();
    const url = `http://127.0.0.1:${await freePort()}/`;
    const retry = { initialDelay: '50ms', maxDelay: '50ms', giveUpAfter: '300ms' };
    const a = await sender(dataDir, url, ['bounced'], retry);
    a.logger.warn({ event: 'delivery.bounced', queueId: 'G1', to: 'x@dest.test' }, 'bounced');
    const gaveUp = await eventually(() => a.lines.find((l) => l.event === 'webhook.gave-up'), 'the give-up line');
    expect(gaveUp).toMatchObject({ host: new URL(url).host, webhookEvent: 'bounced' });
    await a.close();
    const b = await sender(dataDir, url, ['bounced'], retry);
    await new Promise((r) => setTimeout(r, 300));
    expect(b.lines.filter((l) => String(l.event).startsWith('webhook.'))).toEqual([]);
  });
});
