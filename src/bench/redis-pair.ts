import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startPostern } from './postern.js';
import { freePort } from './proc.js';
import { startRedis } from './redis.js';
import type { Setup } from './setup.js';

/**
 * Two Postern instances (workers: 1 each) on one Redis queue, the way a site scales out
 * behind a load balancer: the same portal and archive master keys (the Redis backend
 * requires shared ones: either instance may deliver or show what the other accepted).
 * The setup's two ports split the load; its CPU includes Redis.
 */
export async function startRedisPair(base: string, sinkPort: number): Promise<Setup> {
  const redis = await startRedis(join(base, 'redis'), await freePort());
  const started: Setup[] = [];
  try {
    const key = () => randomBytes(32).toString('base64');
    const shared = { url: redis.url, keyPrefix: 'postern-bench:', portalKey: key(), archiveKey: key() };
    for (const name of ['a', 'b']) {
      started.push(await startPostern({ name: `postern-redis-${name}`, dir: join(base, name), port: await freePort(), sinkPort, workers: '1', redis: shared }));
    }
  } catch (err) {
    for (const s of started) await s.stop();
    await redis.stop();
    throw err;
  }
  return {
    name: 'postern-redis-x2',
    ports: started.flatMap((s) => s.ports),
    pgids: [redis.pgid, ...started.flatMap((s) => s.pgids)],
    async stop() {
      for (const s of started) await s.stop();
      await redis.stop();
    },
  };
}
