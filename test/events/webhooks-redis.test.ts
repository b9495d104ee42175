import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { startWebhooks } from '../../src/events/webhooks.js';
import { verifySignature } from '../../src/events/webhooks-sign.js';
import { testConfigInput } from '../helpers/gateway.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, keysUnder, testPrefix } from '../queue/redis-harness.js';
import { capturedLogger, eventually, tempDir } from './helpers.js';
import { freePort, WebhookReceiver } from './webhook-receiver.js';

const available = await devRedisAvailable();
const SECRET = 'whsec-test-redis-7c41d09e2b';

// Skipped only on a developer machine without Redis on 127.0.0.1:6379; under CI=true devRedisAvailable throws (.ci/run starts one).
describe.skipIf(!available)('webhook outbox on Redis (queue.backend: redis)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  let prefix = '';
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    await deleteKeys(DEV_REDIS_URL, prefix);
  });

  /** One instance's webhooks: its own data directory, logger and Redis connection, the shared prefix. */
  async function instance(url: string, retry = { initialDelay: '100ms', maxDelay: '300ms', giveUpAfter: '1h' }) {
    const dataDir = tempDir();
    const config = validateConfig(
      testConfigInput(dataDir, {
        queue: { backend: 'redis' },
        redis: { url: DEV_REDIS_URL, keyPrefix: prefix },
        // Shared master keys, as the redis backend requires (unused here).
        portal: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
        archive: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
        webhooks: [{ url, events: ['delivered'], secret: SECRET, timeout: '1s', retry }],
      }),
    );
    const cap = capturedLogger();
    const hooks = await startWebhooks({ config, dataDir, shard: 0, bus: cap.bus, logger: cap.logger });
    let closed = false;
    const close = async () => {
      if (!closed) await hooks.close();
      closed = true;
    };
    cleanup.push(close);
    const delivered = (n: string) => cap.logger.info({ event: 'delivery.sent', queueId: n, to: `${n}@dest.test`, status: 'sent' }, 'delivered');
    return { ...cap, close, delivered, dataDir };
  }

  it('what one instance recorded but could not deliver before it stopped is delivered by another, with the same delivery id and signature rules', async () => {
    prefix = testPrefix();
    const receiver = new WebhookReceiver(await freePort());
    const a = await instance(receiver.url);
    const b = await instance(receiver.url);
    // The receiver is down: A's attempts fail and are scheduled again, in Redis.
    for (const n of ['A1', 'A2', 'A3']) a.delivered(n);
    await eventually(() => a.lines.filter((l) => l.event === 'webhook.failed').length >= 3, 'A tried each once');
    await a.close();
    // Nothing of it is on A's disk: the outbox is the shared one.
    expect(await keysUnder(DEV_REDIS_URL, `${prefix}wh:d:`)).toHaveLength(3);

    await receiver.start();
    cleanup.push(() => receiver.stop());
    b.delivered('B1');
    await eventually(() => receiver.received.length === 4, 'all four deliveries, through B');
    expect(receiver.received.map((r) => r.json.data.queueId).sort()).toEqual(['A1', 'A2', 'A3', 'B1']);
    for (const r of receiver.received) {
      expect(verifySignature(String(r.headers['postern-signature']), r.body, SECRET)).toBe(true);
      expect(r.json).toMatchObject({ event: 'delivered', code: 'delivery.sent', id: r.headers['postern-delivery'] });
    }
    // B carried on A's count: its attempts at A's events are not the first.
    // The receiver keeps a request before it answers; B logs the delivery once it has the answer.
    await eventually(() => b.lines.filter((l) => l.event === 'webhook.delivered').length >= 4, 'B logged the four deliveries');
    const bDelivered = b.lines.filter((l) => l.event === 'webhook.delivered');
    expect(bDelivered).toHaveLength(4);
    const aIds = new Set(a.lines.filter((l) => l.event === 'webhook.failed').map((l) => l.delivery));
    expect(bDelivered.filter((l) => aIds.has(l.delivery)).every((l) => Number(l.attempt) > 1)).toBe(true);
    // Delivered ones are deleted: nothing is sent again, nothing stays behind.
    await eventually(async () => (await keysUnder(DEV_REDIS_URL, `${prefix}wh:d:`)).length === 0, 'outbox emptied');
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.requests).toBe(4);
  });

  it('a delivery failing past giveUpAfter is given up once, by the instance that holds it then, and removed from Redis', async () => {
    prefix = testPrefix();
    const url = `http://127.0.0.1:${await freePort()}/`;
    const retry = { initialDelay: '100ms', maxDelay: '100ms', giveUpAfter: '1500ms' };
    const a = await instance(url, retry);
    a.delivered('G1');
    await eventually(() => a.lines.some((l) => l.event === 'webhook.failed'), 'a first failed attempt');
    await a.close();
    // B was not there when the event happened; the attempts and the give-up clock are in Redis.
    const b = await instance(url, retry);
    const gaveUp = await eventually(() => b.lines.find((l) => l.event === 'webhook.gave-up'), 'the give-up line, from B');
    expect(gaveUp).toMatchObject({ host: new URL(url).host, webhookEvent: 'delivered' });
    expect(Number(gaveUp.attempts)).toBeGreaterThan(1);
    await new Promise((r) => setTimeout(r, 500));
    expect([...a.lines, ...b.lines].filter((l) => l.event === 'webhook.gave-up')).toHaveLength(1);
    expect(await keysUnder(DEV_REDIS_URL, `${prefix}wh:d:`)).toEqual([]);
  });
});
