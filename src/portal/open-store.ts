import { join } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import type { Logger } from '../events/logger.js';
import { connectRedis } from '../queue/redis/connect.js';
import type { MasterKey } from './crypto.js';
import { FsPortalStore } from './fs-store.js';
import { RedisPortalStore } from './redis-store.js';
import type { PortalStore } from './store.js';

/**
 * The portal's storage follows the queue: files under the data directory for one
 * instance, the shared Redis when several instances share a queue there (a message
 * stored through one instance must be readable through any other).
 */
export async function openPortalStore(config: Pick<PosternConfig, 'queue' | 'redis'>, dataDir: string, keys: MasterKey[], logger?: Logger): Promise<PortalStore> {
  const store: PortalStore =
    config.queue.backend === 'redis' ? new RedisPortalStore(await connectRedis(config.redis, logger), config.redis.keyPrefix, keys, true) : new FsPortalStore(join(dataDir, 'portal'), keys);
  await store.open();
  return store;
}
