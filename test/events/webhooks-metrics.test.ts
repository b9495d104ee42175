import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { GatewayMetrics } from '../../src/events/metrics.js';
import { testConfigInput } from '../helpers/gateway.js';
import { eventually, gatewayWithBus, startWebhookSender, tempDir } from './helpers.js';
import { parseMetrics, sample } from './metrics-helpers.js';
import { freePort, WebhookReceiver } from './webhook-receiver.js';

const SECRET = 'whsec-test-metrics-4e8b1f27c0';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * postern_webhook_failures_total counted webhook.failed lines: attempts that were to be
 * retried, but not the last one (given up), and also outbox and Redis trouble, which are
 * no attempts. It counts failed delivery attempts, one per attempt, by webhook and reason.
 * postern_webhook_given_up_total missed the give-ups decided as the outbox is loaded: the
 * metrics subscribe to the bus after the webhooks have started.
 */
describe('webhook metrics', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('failures count every failed attempt, the last one included, by webhook and reason; nothing else', async () => {
    const dataDir = tempDir();
    const receiver = await new WebhookReceiver().start();
    cleanup.push(() => receiver.stop());
    receiver.status = () => 503;
    const refused = `http://127.0.0.1:${await freePort()}/`;
    const retry = { initialDelay: '50ms', maxDelay: '50ms', giveUpAfter: '400ms' };
    const config = validateConfig(testConfigInput(dataDir, { webhooks: [receiver.url, refused].map((url) => ({ url, events: ['delivered'], secret: SECRET, timeout: '2s', retry })) }));
    const s = await startWebhookSender(cleanup, { config, dataDir });
    const metrics = new GatewayMetrics(s.bus, {}, { processMetrics: false });
    cleanup.push(async () => metrics.close());
    s.logger.info({ event: 'delivery.sent', queueId: 'M1', to: 'm1@dest.test', status: 'sent' }, 'delivered');
    await eventually(() => s.lines.filter((l) => l.event === 'webhook.gave-up').length === 2, 'both deliveries given up');
    // A webhook.failed line that is no attempt (the outbox could not be written).
    s.logger.error({ event: 'webhook.failed', reason: 'outbox write failed', err: 'EIO', failures: 1 }, 'webhook outbox write failed');

    const f = parseMetrics(await metrics.registry.metrics());
    const to503 = new URL(receiver.url).host;
    const toRefused = new URL(refused).host;
    const attemptsAt = (host: string) => Number(s.lines.find((l) => l.event === 'webhook.gave-up' && l.host === host)?.attempts);
    expect(attemptsAt(to503)).toBe(receiver.requests);
    expect(sample(f, 'postern_webhook_failures_total', { webhook: to503, reason: 'http-503' })).toBe(receiver.requests);
    expect(sample(f, 'postern_webhook_failures_total', { webhook: toRefused, reason: 'ECONNREFUSED' })).toBe(attemptsAt(toRefused));
    const all = f.find((x) => x.name === 'postern_webhook_failures_total')?.metrics ?? [];
    expect(all.reduce((n, m) => n + Number(m.value), 0)).toBe(receiver.requests + attemptsAt(toRefused));
    expect(sample(f, 'postern_webhook_given_up_total', { webhook: to503 })).toBe(1);
    expect(sample(f, 'postern_webhook_given_up_total', { webhook: toRefused })).toBe(1);
  }, 20_000);

  it('deliveries given up as the outbox is loaded at start-up are counted, as the log shows them', async () => {
    const url = `http://127.0.0.1:${await freePort()}/`;
    const retry = { initialDelay: '100ms', maxDelay: '100ms', giveUpAfter: '500ms' };
    const gw = await gatewayWithBus({ webhooks: [{ url, events: ['delivered'], secret: SECRET, timeout: '2s', retry }] }, async ({ dataDir, config }) => {
      // An earlier run on this data directory left a delivery that failed, then stopped.
      const earlier = await startWebhookSender([], { config, dataDir });
      earlier.logger.info({ event: 'delivery.sent', queueId: 'S1', to: 's1@dest.test', status: 'sent' }, 'delivered');
      await eventually(() => earlier.lines.some((l) => l.event === 'webhook.failed'), 'a failed attempt of the earlier run');
      await earlier.close();
      await sleep(600); // past giveUpAfter while nothing ran
    });
    cleanup.push(() => gw.stop());
    const gaveUp = gw.lines.filter((l) => l.event === 'webhook.gave-up');
    expect(gaveUp).toMatchObject([{ host: new URL(url).host, reason: 'past retry.giveUpAfter (500 ms) before its next attempt' }]);
    const f = parseMetrics(await gw.gateway.operations.metrics.registry.metrics());
    expect(sample(f, 'postern_webhook_given_up_total', { webhook: new URL(url).host })).toBe(1);
  }, 20_000);
});
