import type { Redis } from 'ioredis';
import { redactedUrl } from './redacted-url.js';

/**
 * The oldest Redis Postern runs on. The portal store sets expiries as absolute times
 * (SET ... PXAT, 6.2) and replaces a value while keeping its expiry (SET ... KEEPTTL,
 * 6.0); the queue's and the webhook outbox's scripts read TIME before they write (effect
 * replication, 5.0). An older server would accept mail and then fail on the first portal
 * delivery or login, so it is refused at start instead.
 */
export const MIN_REDIS_VERSION = '6.2.0';

/** redis_version from the text of INFO server (Valkey and most compatible servers report it too). */
export function redisVersionOf(infoServer: string): string | undefined {
  return /^redis_version:(\S+)/m.exec(infoServer)?.[1];
}

/**
 * Whether a version ("major.minor.patch", anything after a number ignored) is below the
 * minimum. A version that is not one ("unknown") is not below: the caller decides.
 */
export function versionBelow(version: string, minimum = MIN_REDIS_VERSION): boolean {
  const parts = (v: string) => v.split('.').map((p) => Number.parseInt(p, 10));
  const have = parts(version);
  if (Number.isNaN(have[0])) return false;
  const want = parts(minimum);
  for (let i = 0; i < want.length; i++) {
    // A part missing or not a number ("7.2" or "7.2.x") counts as 0.
    const a = have[i] || 0;
    const b = want[i] || 0;
    if (a !== b) return a < b;
  }
  return false;
}

/**
 * Reads the server's version (INFO server) and throws, naming redis.url, when it is below
 * MIN_REDIS_VERSION. Returns the version, or undefined when INFO does not tell it (the
 * command renamed away, or a server that does not report redis_version): then Postern
 * runs, and an unsupported command fails when first used.
 */
export async function checkRedisVersion(redis: Redis, url: string): Promise<string | undefined> {
  let version: string | undefined;
  try {
    version = redisVersionOf(await redis.info('server'));
  } catch {
    return undefined;
  }
  if (version !== undefined && versionBelow(version)) {
    throw new Error(`redis.url (${redactedUrl(url)}) is Redis ${version}; Postern needs Redis ${MIN_REDIS_VERSION.replace(/\.0$/, '')} or later (the portal store uses SET with PXAT): upgrade Redis or point redis.url at a newer server`);
  }
  return version;
}
