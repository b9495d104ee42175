import { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import { execTransaction, NoMessageError } from './lua.js';

/** Bytes fetched per GETRANGE: one round trip per slice, never the whole body in memory. */
export const READ_SLICE = 256 * 1024;

/**
 * Streams a stored body slice by slice. The length is read first, so a body deleted
 * while it is being read (the message was removed) ends the stream with an error
 * rather than a silently truncated message.
 */
export async function openBodyStream(redis: Redis, key: string, id: string): Promise<Readable> {
  const [exists, length] = (await execTransaction(redis.multi().exists(key).strlen(key))).map(Number);
  if (!exists) throw new NoMessageError(`queue: no message ${id}`);
  return Readable.from(slices(redis, key, id, length ?? 0), { objectMode: false });
}

async function* slices(redis: Redis, key: string, id: string, length: number): AsyncGenerator<Buffer> {
  let offset = 0;
  while (offset < length) {
    const end = Math.min(offset + READ_SLICE, length) - 1;
    const part = await redis.getrangeBuffer(key, offset, end);
    if (part.length !== end - offset + 1) throw new Error(`queue: body of ${id} changed while it was read (removed?)`);
    offset += part.length;
    yield part;
  }
}
