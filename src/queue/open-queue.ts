import { join } from 'node:path';
import { MemoryCache, RedisCache, type SharedCache } from '../common/shared-cache.js';
import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { QueueBackend } from './backend.js';
import { spoolShardDir } from './fs/shards.js';
import { FsSpool } from './fs/spool.js';
import { openRedisQueue } from './redis/connect.js';
import type { RedisQueue } from './redis/queue.js';
import { MemoryStsPolicies } from '../tls/sts-policy-memory.js';
import { SharedStsPolicies } from '../tls/sts-policy-shared.js';
import type { StsPolicyStore, StsStoreFailure } from '../tls/sts-policy.js';

export interface OpenedQueue {
  queue: QueueBackend;
  /** Caches the instances share (MTA-STS failures, TLS capabilities, key discovery): Redis with the Redis queue. */
  cache: SharedCache;
  /**
   * MTA-STS policies, kept apart from `cache` until their max_age (a bounded MemoryCache
   * would let other entries push them out): on Redis with the Redis queue, else in
   * memory and under <dataDir>/tls/mta-sts. Undefined when MTA-STS is off.
   */
  stsPolicies?: StsPolicyStore | undefined;
  /** false while the shared Redis does not answer a timed PING; undefined for the fs spool. */
  redisReady?: (() => boolean) | undefined;
}

/** The durable queue the config names, opened and recovered, with its shared cache. */
export async function openQueue(config: PosternConfig, dataDir: string, shard: number, logger: Logger): Promise<OpenedQueue> {
  const shared = config.queue.backend === 'redis' ? await openRedisQueue(config, logger) : undefined;
  const cache = shared ? new RedisCache(shared.redis, config.redis.keyPrefix) : new MemoryCache();
  // Read before the spool is opened and locked: a policy directory that cannot be read
  // stops the start with nothing to close.
  const onFailure: StsStoreFailure = (f) =>
    logger.warn({ event: EVENTS.mtaStsStoreFailed, domain: f.domain, operation: f.operation, err: f.error }, 'MTA-STS policy not kept durably: a restart or another instance will not have it');
  const stsPolicies = !config.delivery.mtaSts.enabled
    ? undefined
    : shared
      ? new SharedStsPolicies(cache, onFailure)
      : await MemoryStsPolicies.open(join(dataDir, 'tls', 'mta-sts'), { onFailure });
  const queue: QueueBackend = shared ?? new FsSpool(spoolShardDir(dataDir, shard), { commitWindowMs: config.queue.commitWindow, segmentMaxAgeMs: config.queue.segmentMaxAge });
  const { recovered, cleaned } = await queue.open();
  logger.info({ event: EVENTS.queueRecovered, backend: config.queue.backend, recovered, cleaned }, 'queue opened');
  return {
    queue,
    cache,
    stsPolicies,
    redisReady: shared ? () => shared.ready() : undefined,
  };
}
