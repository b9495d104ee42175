import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { PosternConfig } from '../../config/schema.js';
import type { Logger } from '../../events/logger.js';
import { checkRedisDurability } from './durability.js';
import { REDIS_EVENTS } from './events.js';
import { redactedUrl } from './redacted-url.js';
import { RedisQueue } from './queue.js';
import { checkRedisVersion } from './version.js';

type RedisConfig = PosternConfig['redis'];

/** TCP keep-alive probes start after this much silence: a peer gone without a word is noticed. */
const KEEPALIVE_MS = 10_000;

/**
 * Client options chosen for "250 means durable": a command is never queued while Redis
 * is unreachable (enableOfflineQueue off) nor silently sent again after a reconnect
 * (a repeated APPEND would corrupt a body), so a Redis outage fails commits at once
 * and the client is told 4xx. A Redis that hangs (stopped, swapping) or sits behind a
 * partition keeps the connection open and answers nothing: commandTimeout fails each
 * command after redis.commandTimeout instead of leaving an SMTP session waiting, and
 * keep-alive (set here rather than left to the library's default) lets the kernel
 * close a connection whose peer is gone. The connection itself reconnects on its own.
 */
export function redisClientOptions(config: RedisConfig): RedisOptions {
  const options: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: config.commandTimeout,
    keepAlive: KEEPALIVE_MS,
    connectionName: 'postern',
  };
  if (config.tls?.ca) {
    if (!config.url.startsWith('rediss://')) throw new Error('redis.tls.ca is set but redis.url does not start with rediss:// (TLS)');
    options.tls = { ca: readFileSync(config.tls.ca) };
  }
  return options;
}

/**
 * A connected client (password and TLS from the URL and config) to a Redis recent enough
 * for every store on it (version.ts): each store connects here, so the CLI's key and
 * portal commands are refused an old Redis the same way the gateway is.
 */
export async function connectRedis(config: RedisConfig, logger?: Logger): Promise<Redis> {
  const redis = new Redis(config.url, redisClientOptions(config));
  // connect() itself often only says "Connection is closed"; the cause (a TLS or AUTH
  // failure) arrives as an error event.
  let cause: Error | undefined;
  redis.on('error', (err: Error) => {
    cause = err;
    logger?.warn({ event: REDIS_EVENTS.error, url: redactedUrl(config.url), err: err.message }, 'Redis connection error');
  });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    const reasons = [...new Set([cause?.message, (err as Error).message].filter(Boolean))];
    throw new Error(`cannot reach Redis at ${redactedUrl(config.url)}: ${reasons.join('; ')}`);
  }
  try {
    await checkRedisVersion(redis, config.url);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  return redis;
}

/**
 * What main calls for queue.backend: redis. Connects, checks that Redis keeps what it
 * acknowledges and never evicts it (redis.durability: warn logs the problems, refuse stops the start), and
 * returns the queue, to be open()ed like any QueueBackend.
 */
export async function openRedisQueue(config: Pick<PosternConfig, 'redis'>, logger: Logger): Promise<RedisQueue> {
  const cfg = config.redis;
  const redis = await connectRedis(cfg, logger);
  const verdict = await checkRedisDurability(redis, { waitReplicas: cfg.waitReplicas });
  if (!verdict.ok) {
    const detail = { event: REDIS_EVENTS.durability, status: verdict.status, problems: verdict.problems, settings: verdict.settings };
    if (cfg.durability === 'refuse') {
      redis.disconnect();
      throw new Error(`Redis at ${redactedUrl(cfg.url)} cannot promise to keep acknowledged mail through a crash or when it is full (redis.durability: refuse):\n  - ${verdict.problems.join('\n  - ')}`);
    }
    logger.warn(detail, 'Redis may lose acknowledged messages in a crash or by eviction (redis.durability: warn)');
  }
  return new RedisQueue(redis, {
    keyPrefix: cfg.keyPrefix,
    leaseTimeMs: cfg.leaseTime,
    waitReplicas: cfg.waitReplicas,
    waitTimeoutMs: cfg.waitTimeout,
    ownsClient: true,
    logger: logger.child({ component: 'queue' }),
  });
}
