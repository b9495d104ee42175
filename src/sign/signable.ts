import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { withHeaderBreak } from '../inspect/header-break.js';
import { headerEnd } from '../protect/header-end.js';

/** Header sections larger than this are passed on as they are (ingress limits them far lower). */
const MAX_HEADER_BYTES = 1024 * 1024;

const LF = 0x0a;
const CRLF = Buffer.from('\r\n');

/**
 * A message as it is DKIM-signed and as it is sent once signed: its header section ends
 * with a blank line. A DKIM signer hashes the body only once it has seen that line, and a
 * verifier splits header from body there (RFC 6376 §3.7), so a message without one (a
 * header-only cron mail, or a script that forgot the line and left its body lines in the
 * header section) could not be signed, and a signature over a blank line that is not sent
 * does not verify. Where the header section ends is decided as every other splitter of
 * Postern decides it (protect/header-end.ts): a header-only message gets the blank line at
 * its end (an empty body), one with body lines in its header section gets it before them
 * (inspect/header-break.ts). Any other message comes back as it is.
 */
export function signable(message: Buffer, max = MAX_HEADER_BYTES): Buffer {
  return withBlankLine(message, true, max) as Buffer;
}

/**
 * signable on a stream: holds back only the header section, then passes the rest through
 * untouched. Destroying the result destroys the source (a spool file is closed).
 */
export function signableStream(source: Readable, max = MAX_HEADER_BYTES): Readable {
  const out = new SignableTransform(max);
  pipeline(source, out, () => undefined); // an error reaches the reader of `out`
  return out;
}

class SignableTransform extends Transform {
  private held: Buffer[] = [];
  private bytes = 0;
  private passing = false;

  constructor(private readonly max: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.passing) return done(null, chunk);
    this.held.push(chunk);
    this.bytes += chunk.length;
    const start = withBlankLine(Buffer.concat(this.held, this.bytes), false, this.max);
    if (!start) return done();
    this.passing = true;
    this.held = [];
    done(null, start);
  }

  override _flush(done: TransformCallback): void {
    // The stream ended inside the header section (or was empty).
    if (!this.passing) this.push(withBlankLine(Buffer.concat(this.held, this.bytes), true, this.max));
    this.held = [];
    done();
  }
}

/**
 * The start of a message (all of it when `complete`) with the blank line in place;
 * undefined while it cannot be known yet. Only the first `max` bytes are looked into, for
 * a Buffer and a stream alike: both must give the same bytes, whatever the chunks, since
 * one may be signed and the other sent.
 */
function withBlankLine(start: Buffer, complete: boolean, max: number): Buffer | undefined {
  const head = start.subarray(0, max);
  // Undefined while more fields may follow (bytes that stop at a line end decide nothing).
  const end = headerEnd(head, false);
  if (end) return withHeaderBreak(start, end);
  if (start.length > max) return start;
  if (!complete) return undefined;
  const whole = headerEnd(start);
  if (whole.fields < start.length) return withHeaderBreak(start, whole);
  // Header-only: the last field's line break, when it has none, then the blank line.
  return Buffer.concat(start.length > 0 && start[start.length - 1] === LF ? [start, CRLF] : [start, CRLF, CRLF]);
}
