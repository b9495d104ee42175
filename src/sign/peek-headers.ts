import { PassThrough, type Readable } from 'node:stream';

/** Header blocks larger than this are not looked into (ingress limits them far lower). */
const MAX_HEADER_BYTES = 1024 * 1024;

/** The header block of a message (up to the blank line), latin1, or all of it when shorter. */
export function headerBlockOf(raw: Buffer): string {
  const end = raw.indexOf('\r\n\r\n');
  return raw.subarray(0, end === -1 ? Math.min(raw.length, MAX_HEADER_BYTES) : end).toString('latin1');
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
    if (joined.includes('\r\n\r\n') || size > MAX_HEADER_BYTES) {
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
