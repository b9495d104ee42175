import type { PosternConfig } from '../config/schema.js';

/**
 * When to try a deferred recipient again: doubling from initialDelay up to maxDelay,
 * with up to 10% jitter so a burst of messages deferred together does not return
 * together. The jitter is drawn once per attempt of a message (Settler.record), not per
 * recipient: the recipients of one message deferred together must return together, in one
 * transaction. The last attempt is placed at the end of the lifetime, so no recipient
 * waits past it.
 */
export function nextAttemptAt(retry: PosternConfig['delivery']['retry'], attempts: number, receivedAt: number, now: number, random = Math.random): number {
  const base = Math.min(retry.initialDelay * 2 ** Math.max(0, attempts - 1), retry.maxDelay);
  const delay = base + Math.floor(base * 0.1 * random());
  return Math.min(now + delay, receivedAt + retry.lifetime);
}

export function isExpired(retry: PosternConfig['delivery']['retry'], receivedAt: number, now: number): boolean {
  return now - receivedAt >= retry.lifetime;
}
