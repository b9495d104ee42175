import { randomBytes } from 'node:crypto';
import { DEV_REDIS_URL, deleteKeys, devRedisAvailable, testPrefix } from '../queue/redis-harness.js';

/** A queue backend a test gateway can run on: its config overrides and what to clean up after. */
export interface QueueBackendCase {
  name: 'fs' | 'redis';
  /** Whether it can run here (the development Redis answers; under CI=true it must). */
  available: boolean;
  /** Config overrides for startTestGateway; a fresh key prefix each call. */
  overrides(): Record<string, unknown>;
  /** Removes what the last overrides() left in Redis. */
  cleanup(): Promise<void>;
}

/** The fs spool and the Redis queue, for tests that must hold on both. */
export async function queueBackendCases(): Promise<QueueBackendCase[]> {
  const redisAvailable = await devRedisAvailable();
  let prefix: string | undefined;
  return [
    { name: 'fs', available: true, overrides: () => ({}), cleanup: async () => undefined },
    {
      name: 'redis',
      available: redisAvailable,
      overrides: () => {
        prefix = testPrefix();
        return {
          queue: { backend: 'redis' },
          redis: { url: DEV_REDIS_URL, keyPrefix: prefix },
          // The redis backend requires shared master keys (unused here).
          portal: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
          archive: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }] },
        };
      },
      cleanup: async () => {
        if (prefix) await deleteKeys(DEV_REDIS_URL, prefix);
        prefix = undefined;
      },
    },
  ];
}
