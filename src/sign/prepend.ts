import { PassThrough, type Readable } from 'node:stream';
import { signable, signableStream } from './signable.js';

/**
 * A signed message as it leaves: the DKIM-Signature header(s) in front of the message in
 * the form it was signed in (signable.ts: a header section that ends with a blank line),
 * so the bytes sent are the bytes signed. A stream stays a stream: the source is piped,
 * never buffered, and destroyed with the result.
 */
export function prependHeader(header: Buffer, message: Buffer | Readable): Buffer | Readable {
  if (Buffer.isBuffer(message)) return Buffer.concat([header, signable(message)]);
  const body = signableStream(message);
  const out = new PassThrough();
  out.write(header);
  body.on('error', (err) => out.destroy(err));
  out.on('close', () => body.destroy());
  body.pipe(out);
  return out;
}
