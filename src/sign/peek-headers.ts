import { PassThrough, type Readable } from 'node:stream';
import { headerEnd } from '../protect/header-end.js';

/** Header blocks larger than this are not looked into (ingress limits them far lower). */
const MAX_HEADER_BYTES = 1024 * 1024;

/**
 * The header block of a message, latin1: its header fields, up to where the header
 * section ends as a reader sees it (header-end.ts: the blank line, or a line before it
 * that is no header field), or the first MAX_HEADER_BYTES when it has not ended by then.
 */
export function headerBlockOf(raw: Buffer): string {
  const head = raw.subarray(0, MAX_HEADER_BYTES);
  const end = headerEnd(head, head.length === raw.length);
  return head.subarray(0, end?.fields ?? head.length).toString('latin1');
}

/**
 * Reads a stream only as far as the end of its header block and hands back that block
 * together with a stream that yields the whole message from its first byte, so the body
 * is still read once, in chunks: nothing but the header block is held in memory.
 */
export async function peekHeaders(stream: Readable): Promise<{ headers: string; stream: Readable }> {
  const seen: Buffer[] = [];
  let size = 0;
  let headers: string | undefined;
  for await (const chunk of stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    seen.push(chunk);
    size += chunk.length;
    const joined = Buffer.concat(seen, size);
    // Undefined until a line shows where the section ends (a chunk that stops at a line end
    // decides nothing: the next may bring more fields, the From among them).
    const end = headerEnd(joined, false);
    if (end || size > MAX_HEADER_BYTES) {
      headers = headerBlockOf(joined);
      break;
    }
  }
  const whole = new PassThrough();
  whole.write(Buffer.concat(seen, size));
  if (stream.readableEnded) {
    whole.end();
  } else {
    stream.on('error', (err) => whole.destroy(err));
    whole.on('close', () => stream.destroy());
    stream.pipe(whole);
  }
  return { headers: headers ?? headerBlockOf(Buffer.concat(seen, size)), stream: whole };
}
