import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { validateConfig } from '../../src/config/load.js';
import { connectRedis } from '../../src/queue/redis/connect.js';
import { RedisQueue, type RedisQueueOptions } from '../../src/queue/redis/queue.js';
import type { IncomingEnvelope } from '../../src/queue/backend.js';
import { newQueueId } from '../../src/queue/ids.js';

export const DEV_REDIS_URL = process.env.POSTERN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Whether the development Redis answers. CI starts one (.ci/run), so there a missing Redis
 * is an error, never a skip; on a developer machine without it the tests are skipped.
 */
export async function devRedisAvailable(): Promise<boolean> {
  const probe = new Redis(DEV_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch (err) {
    if (process.env.CI === 'true') throw new Error(`Redis tests need a Redis at ${DEV_REDIS_URL} (CI=true: .ci/run starts one): ${(err as Error).message}`);
    return false;
  } finally {
    probe.disconnect();
  }
}

/** A key prefix of this test run only, so nothing else on the shared Redis is touched. */
export function testPrefix(): string {
  return `postern-test-${randomBytes(6).toString('hex')}:`;
}

/** The redis config section as the loader fills it, for a URL and prefix. */
export function redisSection(url: string, keyPrefix: string) {
  return validateConfig({ hostname: 'gw.test', redis: { url, keyPrefix } }).redis;
}

/** A queue on its own connection, made the way openRedisQueue makes it (same client options). */
export async function openTestQueue(url: string, keyPrefix: string, options: Partial<RedisQueueOptions> = {}): Promise<RedisQueue> {
  const redis = await connectRedis(redisSection(url, keyPrefix));
  const q = new RedisQueue(redis, { keyPrefix, ownsClient: true, ...options });
  await q.open();
  return q;
}

/** Keys under the prefix, for tests that check what a queue left behind. */
export async function keysUnder(url: string, prefix: string): Promise<string[]> {
  const redis = new Redis(url, { maxRetriesPerRequest: 0 });
  try {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
    return out.sort();
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key under the prefix (SCAN + DEL: never FLUSHDB on a shared Redis). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const keys = await keysUnder(url, prefix);
  const redis = new Redis(url, { maxRetriesPerRequest: 0 });
  try {
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  } finally {
    redis.disconnect();
  }
}

export function envelope(overrides: Partial<IncomingEnvelope> = {}): IncomingEnvelope {
  return {
    id: newQueueId(),
    receivedAt: Date.now(),
    mailFrom: 'a@client.test',
    rcptTo: ['b@dest.test'],
    client: { ip: '127.0.0.1', helo: 'c', sessionId: 's' },
    bodyType: '7bit',
    smtpUtf8: false,
    ...overrides,
  };
}

export async function commitBody(q: RedisQueue, body: Buffer | string, overrides: Partial<IncomingEnvelope> = {}) {
  const w = await q.receive(envelope(overrides));
  await w.write(Buffer.from(body));
  return w.commit();
}

export async function readBody(q: RedisQueue, id: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of await q.openBody(id)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}
