import { MemoryCache, RedisCache, type SharedCache } from '../common/shared-cache.js';
import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { QueueBackend } from './backend.js';
import { spoolShardDir } from './fs/shards.js';
import { FsSpool } from './fs/spool.js';
import { openRedisQueue } from './redis/connect.js';
import type { RedisQueue } from './redis/queue.js';

export interface OpenedQueue {
  queue: QueueBackend;
  /** Caches the instances share (MTA-STS, TLS capabilities): Redis with the Redis queue. */
  cache: SharedCache;
  /** false while the shared Redis does not answer a timed PING; undefined for the fs spool. */
  redisReady?: (() => boolean) | undefined;
}

/** The durable queue the config names, opened and recovered, with its shared cache. */
export async function openQueue(config: PosternConfig, dataDir: string, shard: number, logger: Logger): Promise<OpenedQueue> {
  const shared = config.queue.backend === 'redis' ? await openRedisQueue(config, logger) : undefined;
  const queue: QueueBackend = shared ?? new FsSpool(spoolShardDir(dataDir, shard), { commitWindowMs: config.queue.commitWindow, segmentMaxAgeMs: config.queue.segmentMaxAge });
  const { recovered, cleaned } = await queue.open();
  logger.info({ event: EVENTS.queueRecovered, backend: config.queue.backend, recovered, cleaned }, 'queue opened');
  return {
    queue,
    cache: shared ? new RedisCache(shared.redis, config.redis.keyPrefix) : new MemoryCache(),
    redisReady: shared ? () => shared.ready() : undefined,
  };
}
