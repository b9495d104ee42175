import { afterEach, describe, expect, it } from 'vitest';
import { postWebhook } from '../../src/events/webhooks-post.js';
import { freePort, WebhookReceiver } from './webhook-receiver.js';

const request = (url: string, timeoutMs: number) => postWebhook({ url, secret: 'whsec-test-post-0b7e21c94d', event: 'delivered', deliveryId: 'd1', body: '{}', timeoutMs });

/** What webhook.failed's `err` and the gave-up reason say when a receiver gives no answer. */
describe('webhook POST failures', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('a receiver that never answers: the error names the timeout and its limit (not the abort signal\'s numeric code 23)', async () => {
    const receiver = await new WebhookReceiver().start();
    receiver.hang = true;
    cleanup.push(() => receiver.stop());
    expect(await request(receiver.url, 300)).toEqual({ error: 'timeout after 300 ms' });
  });

  it('a refused connection is named by its string code', async () => {
    expect(await request(`http://127.0.0.1:${await freePort()}/`, 2000)).toEqual({ error: 'ECONNREFUSED' });
  });
});
