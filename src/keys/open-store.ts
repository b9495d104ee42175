import { join } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import type { Logger } from '../events/logger.js';
import { connectRedis } from '../queue/redis/connect.js';
import { RedisKeyStore } from './redis-store.js';
import { FileKeyStore, type KeyStore } from './store.js';

/**
 * The key store follows the queue, as the portal store does: files under the data
 * directory for one instance, the shared Redis when several instances share a queue there
 * (which key a recipient gets must not depend on which instance delivers the message).
 * The gateway, the admin API and `postern keys` all open it here.
 */
export async function openKeyStore(config: Pick<PosternConfig, 'queue' | 'redis'>, dataDir: string, logger?: Logger): Promise<KeyStore> {
  const store: KeyStore = config.queue.backend === 'redis' ? new RedisKeyStore(await connectRedis(config.redis, logger), config.redis.keyPrefix, true) : new FileKeyStore(join(dataDir, 'keys'));
  await store.open();
  return store;
}
