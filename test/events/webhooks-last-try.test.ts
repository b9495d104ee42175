import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attemptDelivery } from '../../src/events/webhooks-attempt.js';
import type { Hook } from '../../src/events/webhooks-hooks.js';
import type { OutboxEvent } from '../../src/events/webhooks-outbox.js';
import { createLogger } from '../../src/events/logger.js';
import { WebhookReceiver } from './webhook-receiver.js';

/**
 * A failing delivery is tried once more just before retry.giveUpAfter runs out. It was
 * given up as soon as the next backoff step would pass it: with 5 s doubling to 1 h and
 * giveUpAfter 1 h, at 42 minutes, with 18 minutes of the promised time left.
 */
describe('the last try of a failing webhook delivery', () => {
  const receiver = new WebhookReceiver();
  let hook: Hook;
  beforeAll(async () => {
    await receiver.start();
    receiver.status = () => 503;
    hook = { id: 'h', url: receiver.url, host: '127.0.0.1', secret: 'whsec-test-last-try-5d0c1a', timeoutMs: 2000, retry: { initialDelay: 5000, maxDelay: 3_600_000, giveUpAfter: 3_600_000 }, matches: () => true };
  });
  afterAll(() => receiver.stop());
  const log = createLogger('silent');
  const event = (ageMs: number): OutboxEvent => ({ t: 'event', id: `d-${ageMs}`, hook: 'h', event: 'delivered', at: Date.now() - ageMs, payload: {} });

  it('when the next backoff step would pass giveUpAfter, the next try is just before it, not never', async () => {
    // Attempt 10 at 42 minutes: the next step (5 s × 2^9 = 42.7 min) would come after 1 h.
    const e = event(42 * 60_000);
    const outcome = await attemptDelivery(hook, e, 10, log);
    expect(outcome).toEqual({ t: 'retry', dueAt: e.at + 3_600_000 - 100 });
  });

  it('that last try failing too, the delivery is given up', async () => {
    const outcome = await attemptDelivery(hook, event(3_600_000 - 50), 11, log);
    expect(outcome).toMatchObject({ t: 'give-up', reason: 'no 2xx answer in 11 attempt(s); last: 503' });
  });
});
