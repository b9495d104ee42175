import { isAscii, isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';

/**
 * Header sections longer than this are judged by their first bytes; ingress keeps them
 * far smaller (smtp.limits.maxHeaderSize), so only a message we made ourselves could reach it.
 */
const MAX_HEADER_BYTES = 1024 * 1024;
const BLANK_LINE = Buffer.from('\r\n\r\n');

/** A message opened to be sent, and whether its header section needs SMTPUTF8. */
export interface OpenedMessage {
  body: Buffer | Readable;
  /** The header section has non-ASCII bytes and they are UTF-8 (RFC 6532 header fields). */
  utf8Header: boolean;
}

/**
 * Looks at the header section of an outgoing message (what leaves, after encryption and
 * signing) before MAIL FROM, when SMTPUTF8 must be decided. A stream is read only as far as
 * its header section and what was read is put back in front of it (unshift): no copy of the
 * message and no extra stage it flows through, so the body still goes out in its chunks.
 * A message that ended within those bytes is handed on as the Buffer it all fits in.
 */
export async function openedWithHeaderFacts(body: Buffer | Readable): Promise<OpenedMessage> {
  if (Buffer.isBuffer(body)) return { body, utf8Header: isUtf8Header(headerSection(body)) };
  let read: Buffer | undefined;
  for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    // Concatenated only when the section spans chunks (rare: a first chunk is 64 KB).
    const from = read ? Math.max(0, read.length - (BLANK_LINE.length - 1)) : 0;
    read = read ? Buffer.concat([read, chunk]) : chunk;
    if (read.indexOf(BLANK_LINE, from) !== -1 || read.length >= MAX_HEADER_BYTES) break;
  }
  const seen = read ?? Buffer.alloc(0);
  const utf8Header = isUtf8Header(headerSection(seen));
  // 'end' was emitted: everything the stream had is in `seen`, and unshift would now fail.
  if (body.readableEnded || body.destroyed) return { body: seen, utf8Header };
  if (seen.length) body.unshift(seen);
  return { body, utf8Header };
}

/** The bytes before the blank line (all of them when there is none), not copied. */
function headerSection(message: Buffer): Buffer {
  // A message that starts with the blank line has no header fields at all.
  if (message[0] === 0x0d && message[1] === 0x0a) return message.subarray(0, 0);
  const window = message.subarray(0, MAX_HEADER_BYTES);
  const end = window.indexOf(BLANK_LINE);
  return end === -1 ? window : window.subarray(0, end);
}

/**
 * Non-ASCII that is valid UTF-8. Raw 8-bit bytes in another charset (legacy Latin-1
 * headers) are not internationalised headers: announcing SMTPUTF8 for them would claim
 * UTF-8 that is not there.
 */
function isUtf8Header(section: Buffer): boolean {
  return !isAscii(section) && isUtf8(section);
}
