import { RedisCache } from '../common/shared-cache.js';
import type { PosternConfig } from '../config/schema.js';
import { DeliveryDns } from '../deliver/dns.js';
import { Router } from '../deliver/router.js';
import { connectRedis } from '../queue/redis/connect.js';
import { TlsCapabilityCache } from '../tls/capability-cache.js';
import { tlsForecaster, type ForecastFn } from '../tls/forecast.js';

/** With the fs backend the capability cache lives in the gateway's memory only. */
const NONE_HERE = "none here (the running gateway's admin API has it: POST /api/v1/policy/explain)";

export interface SharedForecast {
  forecast?: ForecastFn | undefined;
  /** For the output: where the forecast comes from, or why there is none. */
  label: string;
  close(): void;
}

/**
 * The TLS forecast `postern policy explain` can give apart from the gateway. The gateway
 * keeps what it saw of each MX's TLS in memory; with queue.backend: redis it also writes
 * it to the shared cache, which this reads — the same lookup (routes, MX by DNS) and the
 * same rule (tls/forecast.ts) as the gateway's decisions. With the fs backend there is
 * nothing this process can read.
 */
export async function sharedForecast(config: PosternConfig): Promise<SharedForecast> {
  if (config.queue.backend !== 'redis') return { label: NONE_HERE, close: () => undefined };
  let redis;
  try {
    redis = await connectRedis(config.redis);
  } catch (err) {
    return { label: `none (${(err as Error).message})`, close: () => undefined };
  }
  const capabilities = new TlsCapabilityCache(undefined, undefined, new RedisCache(redis, config.redis.keyPrefix));
  const router = new Router(config.delivery, new DeliveryDns(config.delivery.dns.servers, config.delivery.dns.timeout));
  const connection = redis;
  return {
    forecast: tlsForecaster((domain) => router.route(domain), (host, port) => capabilities.lookup(host, port)),
    label: 'the capability cache the gateway shares on Redis',
    close: () => connection.disconnect(),
  };
}
