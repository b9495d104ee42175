import { isAscii, isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import { headerEnd, HeaderEndScanner } from '../protect/header-end.js';

/**
 * Header sections longer than this are judged by their first bytes; ingress keeps them
 * far smaller (smtp.limits.maxHeaderSize), so only a message we made ourselves could reach it.
 */
const MAX_HEADER_BYTES = 1024 * 1024;

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
  const chunks: Buffer[] = [];
  const section = new HeaderEndScanner();
  let size = 0;
  for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (section.push(chunk) || size >= MAX_HEADER_BYTES) break;
  }
  // Concatenated only when the section spans chunks (rare: a first chunk is 64 KB).
  const seen = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
  const utf8Header = isUtf8Header(headerSection(seen));
  // 'end' was emitted: everything the stream had is in `seen`, and unshift would now fail.
  if (body.readableEnded || body.destroyed) return { body: seen, utf8Header };
  if (seen.length) body.unshift(seen);
  return { body, utf8Header };
}

/**
 * The header fields of a message, or of the start of one (not copied): its header section
 * as receivers split it (protect/header-end.ts), at the blank line or at the first line
 * that is no header field. A message sent without the blank line has body lines there;
 * their UTF-8 is body text, not RFC 6532 header fields, and needs no SMTPUTF8.
 */
function headerSection(message: Buffer): Buffer {
  const window = message.subarray(0, MAX_HEADER_BYTES);
  const end = headerEnd(window, window.length === message.length);
  return window.subarray(0, end?.fields ?? window.length);
}

/**
 * Non-ASCII that is valid UTF-8. Raw 8-bit bytes in another charset (legacy Latin-1
 * headers) are not internationalised headers: announcing SMTPUTF8 for them would claim
 * UTF-8 that is not there.
 */
function isUtf8Header(section: Buffer): boolean {
  return !isAscii(section) && isUtf8(section);
}
