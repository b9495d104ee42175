import { isAscii } from 'node:buffer';
import type { Envelope } from '../types.js';
import type { QueueBackend } from './backend.js';
import { newQueueId } from './ids.js';

/** Queues a message Postern wrote itself (a report, a notice, a reply), durably. */
export async function enqueueLocal(
  queue: QueueBackend,
  opts: { hostname: string; from: string; to: string[]; raw: Buffer; origin: NonNullable<Envelope['origin']>; sessionId: string },
): Promise<Envelope> {
  const writer = await queue.receive({
    id: newQueueId(),
    receivedAt: Date.now(),
    mailFrom: opts.from,
    rcptTo: opts.to,
    client: { ip: '127.0.0.1', helo: opts.hostname, sessionId: opts.sessionId },
    // One native scan (a portal reply with attachments can be megabytes), not a callback per byte.
    bodyType: isAscii(opts.raw) ? '7bit' : '8bitmime',
    smtpUtf8: false,
    origin: opts.origin,
  });
  try {
    await writer.write(opts.raw);
    return await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
