import type { Redis } from 'ioredis';
import type { QueuedMessage } from '../../types.js';
import { decodeMessage } from './codec.js';
import type { RedisKeys } from './keys.js';

/** Messages read per round trip by listMessages. */
const LIST_PAGE = 500;

export async function getMessage(redis: Redis, keys: RedisKeys, id: string): Promise<QueuedMessage | undefined> {
  const [envelopeJson, stateJson] = await redis.hmget(keys.msg(id), 'envelope', 'state');
  return envelopeJson === null ? undefined : decodeMessage(id, envelopeJson, stateJson);
}

/**
 * Every committed message, oldest first, read in pages so a large queue is not one reply.
 * A message removed between the page and its read is simply left out.
 */
export async function listMessages(redis: Redis, keys: RedisKeys): Promise<QueuedMessage[]> {
  const out: QueuedMessage[] = [];
  for (let start = 0; ; start += LIST_PAGE) {
    const ids = await redis.zrange(keys.received, String(start), String(start + LIST_PAGE - 1));
    if (!ids.length) return out;
    const pipe = redis.pipeline();
    for (const id of ids) pipe.hmget(keys.msg(id), 'envelope', 'state');
    const rows = (await pipe.exec()) ?? [];
    rows.forEach(([err, fields], i) => {
      if (err) throw err;
      const [envelopeJson, stateJson] = fields as (string | null)[];
      if (envelopeJson) out.push(decodeMessage(ids[i] as string, envelopeJson, stateJson));
    });
    if (ids.length < LIST_PAGE) return out;
  }
}
