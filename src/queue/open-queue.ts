import type { Redis } from 'ioredis';
import { MemoryCache, RedisCache, type SharedCache } from '../common/shared-cache.js';
import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { QueueBackend } from './backend.js';
import { spoolShardDir } from './fs/shards.js';
import { FsSpool } from './fs/spool.js';
import { openRedisQueue } from './redis/connect.js';

export interface OpenedQueue {
  queue: QueueBackend;
  /** Caches the instances share (MTA-STS, TLS capabilities): Redis with the Redis queue. */
  cache: SharedCache;
  /** false while the shared Redis cannot be reached; undefined for the fs spool. */
  redisReady?: (() => boolean) | undefined;
}

/** The durable queue the config names, opened and recovered, with its shared cache. */
export async function openQueue(config: PosternConfig, dataDir: string, shard: number, logger: Logger): Promise<OpenedQueue> {
  let queue: QueueBackend;
  let redis: Redis | undefined;
  if (config.queue.backend === 'redis') {
    const q = await openRedisQueue(config, logger);
    redis = q.redis;
    queue = q;
  } else {
    queue = new FsSpool(spoolShardDir(dataDir, shard), { commitWindowMs: config.queue.commitWindow });
  }
  const { recovered, cleaned } = await queue.open();
  logger.info({ event: EVENTS.queueRecovered, backend: config.queue.backend, recovered, cleaned }, 'queue opened');
  return {
    queue,
    cache: redis ? new RedisCache(redis, config.redis.keyPrefix) : new MemoryCache(),
    redisReady: redis ? () => redis.status === 'ready' : undefined,
  };
}
