import { Transform, type TransformCallback } from 'node:stream';
import { headerEnd, type HeaderEnd } from './header-end.js';

/**
 * Holds back the start of a message stream until its header section has ended (see
 * header-end.ts), or `max` bytes came without an end, hands that start to `edit` (with
 * the end, or undefined past `max`) and passes the rest through untouched: only the
 * header section is ever held in memory.
 */
export class HeaderSectionTransform extends Transform {
  private held: Buffer[] = [];
  private bytes = 0;
  private passing = false;

  constructor(
    private readonly edit: (start: Buffer, end: HeaderEnd | undefined) => Buffer,
    private readonly max: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.passing) return done(null, chunk);
    this.held.push(chunk);
    this.bytes += chunk.length;
    const joined = Buffer.concat(this.held, this.bytes);
    const end = headerEnd(joined, false);
    if (!end && this.bytes <= this.max) return done();
    this.passing = true;
    this.held = [];
    done(null, this.edit(joined, end));
  }

  override _flush(done: TransformCallback): void {
    if (!this.passing && this.bytes) {
      const joined = Buffer.concat(this.held, this.bytes);
      this.held = [];
      this.push(this.edit(joined, headerEnd(joined)));
    }
    done();
  }
}
