import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';

/**
 * A fast path for nodemailer's DATA encoder. DataStream looks at every byte in JavaScript
 * to stuff dots and repair bare CR/LF: about 0.7 ms of CPU for a 100 KB message, paid on
 * every delivery. Postern's bodies already have CRLF line endings only (ingress refuses
 * or repairs bare CR/LF), so most chunks need nothing done to them. This checks a chunk
 * with native Buffer searches and passes it through untouched when no byte of it would
 * change; anything else goes to the original code, so the output is identical either way
 * (test/deliver/nodemailer-patches.test.ts compares the two on random input).
 *
 * Guarded like the smtp-server patches: if DataStream no longer has the fields this
 * relies on, applying throws at start-up.
 */

interface DataStreamState {
  lastByte: number | false;
  inByteCount: number;
  outByteCount: number;
  push(chunk: Buffer): boolean;
}

type TransformFn = (this: DataStreamState, chunk: Buffer | string, encoding: BufferEncoding, done: () => void) => void;

let applied = false;

export function applyDataStreamFastPath(): void {
  if (applied) return;
  const proto = DataStream.prototype as unknown as { _transform: TransformFn };
  const original = proto._transform;
  const source = String(original);
  if (typeof original !== 'function' || !/lastByte/.test(source) || !/outByteCount/.test(source) || !/inByteCount/.test(source)) {
    throw new Error('nodemailer changed: DataStream._transform no longer looks as Postern patches it (see src/deliver/nodemailer-patches.ts)');
  }
  proto._transform = function (this: DataStreamState, chunk, encoding, done) {
    if (Buffer.isBuffer(chunk) && chunk.length > 0 && passesUnchanged(chunk, this.lastByte)) {
      this.inByteCount += chunk.length;
      this.outByteCount += chunk.length;
      this.lastByte = chunk[chunk.length - 1] as number;
      this.push(chunk);
      return done();
    }
    return original.call(this, chunk, encoding, done);
  };
  applied = true;
}

/**
 * True when DataStream would emit the chunk as it is: no dot at the start of a line and
 * no bare CR or LF, given the byte that ended the previous chunk (false = none yet).
 */
export function passesUnchanged(chunk: Buffer, lastByte: number | false): boolean {
  const first = chunk[0];
  if (first === 0x2e && (lastByte === false || lastByte === 0x0a)) return false;
  if (lastByte === 0x0d && first !== 0x0a) return false;
  if (first === 0x0a && lastByte !== 0x0d) return false;
  if (chunk.indexOf('\n.') !== -1) return false;
  for (let i = chunk.indexOf(0x0a, 1); i !== -1; i = chunk.indexOf(0x0a, i + 1)) {
    if (chunk[i - 1] !== 0x0d) return false;
  }
  for (let i = chunk.indexOf(0x0d); i !== -1 && i < chunk.length - 1; i = chunk.indexOf(0x0d, i + 1)) {
    if (chunk[i + 1] !== 0x0a) return false;
  }
  return true;
}
