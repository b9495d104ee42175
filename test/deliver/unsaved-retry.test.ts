import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { unsavedRetry } from '../../src/deliver/unsaved.js';

/** When a state that could not be written is tried again (src/deliver/unsaved.ts). */
describe('unsavedRetry', () => {
  it('the file spool keeps delivery.retry: the message stays leased while its state is held', () => {
    const config = validateConfig({ hostname: 'gw.test' });
    expect(unsavedRetry(config)).toEqual(config.delivery.retry);
  });

  it('Redis: the first write again comes within the lease (a third of redis.leaseTime), never later than delivery.retry would', () => {
    // The rest of a Redis config (shared master keys) does not matter here.
    const base = validateConfig({ hostname: 'gw.test' });
    const redis = (leaseTimeMs: number, initialDelay = base.delivery.retry.initialDelay) =>
      unsavedRetry({ queue: { ...base.queue, backend: 'redis' }, redis: { ...base.redis, leaseTime: leaseTimeMs }, delivery: { ...base.delivery, retry: { ...base.delivery.retry, initialDelay } } });
    expect(redis(60_000).initialDelay).toBe(20_000);
    expect(redis(90_000).initialDelay).toBe(30_000);
    expect(redis(60_000, 10_000).initialDelay).toBe(10_000);
    expect(redis(60_000).maxDelay).toBe(base.delivery.retry.maxDelay);
  });
});
