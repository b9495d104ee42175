import { PassThrough, type Readable } from 'node:stream';

/**
 * A message with header lines put in front (a DKIM-Signature). A stream stays a stream:
 * the source is piped, never buffered, and destroyed with the result.
 */
export function prependHeader(header: Buffer, body: Buffer | Readable): Buffer | Readable {
  if (Buffer.isBuffer(body)) return Buffer.concat([header, body]);
  const out = new PassThrough();
  out.write(header);
  body.on('error', (err) => out.destroy(err));
  out.on('close', () => body.destroy());
  body.pipe(out);
  return out;
}
