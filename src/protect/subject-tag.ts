import { Readable, Transform, type TransformCallback } from 'node:stream';
import libmime from 'libmime';

const MAX_HEADER_BLOCK = 1024 * 1024;

/**
 * Removes the protection tag ("[secure]") from the Subject header before delivery, as
 * the policy says; nothing else in the message changes. Works on an encoded subject too
 * (decoded, tag removed, encoded again).
 */
export function removeSubjectTag(body: Buffer | Readable, tag: string): Buffer | Readable {
  if (Buffer.isBuffer(body)) {
    const end = headerEnd(body);
    if (end === -1) return body;
    const rewritten = rewriteHeaderBlock(body.subarray(0, end).toString('latin1'), tag);
    return Buffer.concat([Buffer.from(rewritten, 'latin1'), body.subarray(end)]);
  }
  const out = new HeaderRewriter(tag);
  // Whoever consumes the result may destroy it early (a refused transaction): the
  // source (an open spool file) goes with it.
  body.on('error', (err) => out.destroy(err));
  out.on('close', () => body.destroy());
  return body.pipe(out);
}

/** Rewrites the Subject field(s) of a header block (latin1 string, CRLF line ends). */
export function rewriteHeaderBlock(block: string, tag: string): string {
  const fields = block.split(/\r\n(?![ \t])/);
  return fields
    .map((field) => {
      const m = /^subject[ \t]*:/i.exec(field);
      if (!m) return field;
      const raw = field.slice(m[0].length).replace(/\r\n([ \t])/g, '$1').trim();
      const literal = stripTag(raw, tag);
      if (literal !== raw) return `Subject: ${literal}`;
      let decoded: string;
      try {
        decoded = libmime.decodeWords(Buffer.from(raw, 'latin1').toString('utf8'));
      } catch {
        return field;
      }
      const without = stripTag(decoded, tag);
      if (without === decoded) return field;
      // eslint-disable-next-line no-control-regex
      const value = /^[\x00-\x7f]*$/.test(without) ? without : libmime.encodeWords(without, 'Q', 52);
      return Buffer.from(`Subject: ${value}`, 'utf8').toString('latin1');
    })
    .join('\r\n');
}

function stripTag(value: string, tag: string): string {
  const i = value.toLowerCase().indexOf(tag.toLowerCase());
  if (i === -1) return value;
  return (value.slice(0, i) + value.slice(i + tag.length)).replace(/[ \t]{2,}/g, ' ').trim();
}

function headerEnd(buf: Buffer): number {
  const i = buf.indexOf('\r\n\r\n');
  return i === -1 || i > MAX_HEADER_BLOCK ? -1 : i;
}

/** Buffers the header block only, rewrites it, then passes the body through. */
class HeaderRewriter extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  private passing = false;

  constructor(private readonly tag: string) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.passing) return done(null, chunk);
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const joined = Buffer.concat(this.head, this.headBytes);
    const end = headerEnd(joined);
    if (end !== -1 || this.headBytes > MAX_HEADER_BLOCK) {
      this.passing = true;
      this.head = [];
      return done(null, end === -1 ? joined : removeSubjectTag(joined, this.tag));
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.passing && this.headBytes) this.push(Buffer.concat(this.head, this.headBytes));
    done();
  }
}
