import { describe } from 'vitest';
import { queueConformance } from './conformance.js';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, keysUnder, openTestQueue, testPrefix } from './redis-harness.js';
import { expect } from 'vitest';

const available = await devRedisAvailable();

describe.skipIf(!available)(`Redis queue on ${DEV_REDIS_URL}`, () => {
  queueConformance('redis', async () => {
    const prefix = testPrefix();
    let current = await openTestQueue(DEV_REDIS_URL, prefix);
    return {
      backend: current,
      async restart() {
        await current.close();
        current = await openTestQueue(DEV_REDIS_URL, prefix);
        return current;
      },
      async cleanup() {
        await current.close();
        await deleteKeys(DEV_REDIS_URL, prefix);
        expect(await keysUnder(DEV_REDIS_URL, prefix)).toEqual([]);
      },
    };
  });
});
