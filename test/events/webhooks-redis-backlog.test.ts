import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { hookId, type Hook } from '../../src/events/webhooks-hooks.js';
import type { OutboxEvent } from '../../src/events/webhooks-outbox.js';
import { RedisDispatcher } from '../../src/events/webhooks-redis-dispatch.js';
import { RedisOutbox } from '../../src/events/webhooks-redis-outbox.js';
import { startWebhooks } from '../../src/events/webhooks.js';
import { testConfigInput } from '../helpers/gateway.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, keysUnder, testPrefix } from '../queue/redis-harness.js';
import { capturedLogger, eventually, tempDir, type Line } from './helpers.js';
import { freePort, WebhookReceiver } from './webhook-receiver.js';

const available = await devRedisAvailable();
const SECRET = 'whsec-test-redis-backlog-91c3e0';

const backlogCount = (lines: Line[]) => lines.filter((l) => l.event === 'webhook.gave-up').reduce((n, l) => n + (typeof l.count === 'number' ? l.count : 0), 0);

function hook(url: string, giveUpAfter = 3_600_000): Hook {
  return { id: 'h1', url, host: new URL(url).host, secret: SECRET, timeoutMs: 1000, retry: { initialDelay: 3_600_000, maxDelay: 3_600_000, giveUpAfter }, matches: () => true };
}

function event(id: string, at: number): OutboxEvent {
  return { t: 'event', id, hook: 'h1', event: 'delivered', at, payload: { id, event: 'delivered', time: new Date(at).toISOString(), data: { queueId: id } } };
}

// Skipped only on a developer machine without Redis on 127.0.0.1:6379; under CI=true devRedisAvailable throws.
describe.skipIf(!available)('webhook backlog limits (Redis outbox)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  let prefix = '';
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    await deleteKeys(DEV_REDIS_URL, prefix);
  });

  /** The queueIds of the deliveries Redis holds. */
  async function held(): Promise<string[]> {
    const redis = new Redis(DEV_REDIS_URL);
    try {
      const keys = await keysUnder(DEV_REDIS_URL, `${prefix}wh:d:`);
      const events = await Promise.all(keys.map((k) => redis.hget(k, 'event')));
      return events.map((e) => (JSON.parse(e as string) as OutboxEvent).payload.data as { queueId: string }).map((d) => d.queueId).sort();
    } finally {
      redis.disconnect();
    }
  }

  /** A RedisOutbox on its own connection under this test's prefix, counting what the bound gives up. */
  function outboxOf(hooks: Map<string, Hook>, maxPendingPerHook: number) {
    const redis = new Redis(DEV_REDIS_URL);
    const dropped: number[] = [];
    const expired: number[] = [];
    const outbox = new RedisOutbox(redis, `${prefix}wh:`, hooks, { flushIntervalMs: 0, onError: () => undefined, onDropped: (_hook, n) => dropped.push(n), onExpired: (_hook, n) => expired.push(n), maxPendingPerHook });
    cleanup.push(async () => {
      await outbox.close();
      redis.disconnect();
    });
    return { outbox, dropped, expired };
  }

  it('beyond maxPending a webhook gives up its oldest deliveries in Redis, logged with their count: a receiver that is down cannot fill Redis', async () => {
    prefix = testPrefix();
    const dataDir = tempDir();
    const url = `http://127.0.0.1:${await freePort()}/`; // down: every attempt fails, retried in an hour
    const config = validateConfig(
      testConfigInput(dataDir, {
        queue: { backend: 'redis' },
        redis: { url: DEV_REDIS_URL, keyPrefix: prefix },
        portal: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
        archive: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
        webhooks: [{ url, events: ['delivered'], secret: SECRET, timeout: '1s', retry: { initialDelay: '1h', maxDelay: '1h', giveUpAfter: '24h' } }],
      }),
    );
    const cap = capturedLogger();
    const wh = await startWebhooks({ config, dataDir, shard: 0, bus: cap.bus, logger: cap.logger, maxPendingPerHook: 5 });
    // Each a few ms after the last: the bound orders by event time, and ties (the same ms) go either way.
    const delivered = async (...ns: string[]) => {
      for (const n of ns) {
        cap.logger.info({ event: 'delivery.sent', queueId: n, to: `${n}@dest.test`, status: 'sent' }, 'delivered');
        await new Promise((r) => setTimeout(r, 3));
      }
    };
    await delivered('B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B08');
    await cap.bus.durable(10_000);
    await delivered('B09', 'B10', 'B11', 'B12');
    await cap.bus.durable(10_000); // the outbox has written them, and trimmed in the same script
    // Closing waits for attempts in flight: one the bound gave up while it was attempted is deleted when it ends.
    await wh.close();
    expect(await held()).toEqual(['B08', 'B09', 'B10', 'B11', 'B12']);
    expect(backlogCount(cap.lines)).toBe(7);
    expect(cap.lines.find((l) => l.event === 'webhook.gave-up')).toMatchObject({ host: new URL(url).host, maxPending: 5 });
    // What the bound counts holds the same five.
    const redis = new Redis(DEV_REDIS_URL);
    cleanup.push(async () => redis.disconnect());
    expect(await redis.zcard(`${prefix}wh:age:${hookId(url, ['delivered'])}`)).toBe(5);
  });

  it('a delivery the bound gives up while it is being attempted is deleted, and counted, when its attempt ends or its lease runs out', async () => {
    prefix = testPrefix();
    const h = hook('http://127.0.0.1:1/');
    const { outbox, dropped } = outboxOf(new Map([[h.id, h]]), 2);
    const t0 = Date.now() - 10_000;
    outbox.add(event('e1', t0), () => undefined);
    outbox.add(event('e2', t0 + 1), () => undefined);
    await outbox.flush();
    const [held1] = (await outbox.lease(h, 1, 60_000, 'me')).rows; // e1, the oldest, is being attempted
    const [held2] = (await outbox.lease(h, 1, 0, 'dead')).rows; // e2, by an instance that dies: its lease is already over
    outbox.add(event('e3', t0 + 2), () => undefined);
    outbox.add(event('e4', t0 + 3), () => undefined);
    await outbox.flush();
    expect([held1?.id, held2?.id]).toEqual(['e1', 'e2']);
    expect(dropped).toEqual([]); // both are marked, neither counted yet: either might still deliver
    await outbox.retry(held1 as NonNullable<typeof held1>, Date.now(), 1);
    expect(dropped).toEqual([1]);
    const { rows } = await outbox.lease(h, 10, 60_000, 'me'); // reclaims e2's expired lease: given up, not due again
    expect(rows.map((r) => r.id).sort()).toEqual(['e3', 'e4']);
    expect(dropped).toEqual([1, 1]);
    expect((await keysUnder(DEV_REDIS_URL, `${prefix}wh:d:`)).map((k) => k.split(':').at(-1))).toEqual(['e3', 'e4']);
  });

  it('a delivery already past giveUpAfter when its turn comes is given up unsent, as with the file outbox', async () => {
    prefix = testPrefix();
    const receiver = await new WebhookReceiver().start();
    cleanup.push(() => receiver.stop());
    const h = hook(receiver.url, 3_600_000);
    const hooks = new Map([[h.id, h]]);
    const { outbox } = outboxOf(hooks, 100);
    outbox.add(event('old', Date.now() - 2 * 3_600_000), () => undefined); // every instance was down for two hours
    await outbox.flush();
    const cap = capturedLogger();
    const dispatcher = new RedisDispatcher(hooks, outbox, cap.logger, { pollMs: 50, owner: 'me' });
    cleanup.push(() => dispatcher.close());
    dispatcher.wake();
    const line = await eventually(() => cap.lines.find((l) => String(l.event).startsWith('webhook.')), 'what became of the delivery');
    expect(line).toMatchObject({ event: 'webhook.gave-up', delivery: 'old', attempts: 0, reason: 'past retry.giveUpAfter (3600000 ms) before its next attempt' });
    expect(receiver.requests).toBe(0);
    expect(await keysUnder(DEV_REDIS_URL, `${prefix}wh:d:`)).toEqual([]);
  });

  it('deliveries found expired in Redis (nobody took them within giveUpAfter + 1 day) are counted as given up, not dropped without a word', async () => {
    prefix = testPrefix();
    const h = hook('http://127.0.0.1:1/', 1000);
    const { outbox, expired } = outboxOf(new Map([[h.id, h]]), 100);
    // Every instance was down for two days: the delivery's record expires as it is written.
    outbox.add(event('gone', Date.now() - 2 * 86_400_000), () => undefined);
    await outbox.flush();
    expect(await keysUnder(DEV_REDIS_URL, `${prefix}wh:d:`)).toEqual([]);
    const { rows } = await outbox.lease(h, 10, 60_000, 'me');
    expect(rows).toEqual([]);
    expect(expired).toEqual([1]);
    expect((await outbox.lease(h, 10, 60_000, 'me')).rows).toEqual([]);
    expect(expired).toEqual([1]); // counted once
  });
});
