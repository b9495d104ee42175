import { openCms, type CmsContent } from './cms.js';

/**
 * The decoded bytes of an S/MIME part, kept whole because a CMS structure is read whole:
 * up to `maxBytes`, beyond which the part is not opened (a memory bound per message, as
 * for any library that needs the whole input).
 */
export class SmimeBody {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private tooLarge = false;

  constructor(private readonly maxBytes: number) {}

  keep(chunk: Buffer): void {
    if (this.tooLarge) return;
    if (this.bytes + chunk.length > this.maxBytes) {
      this.tooLarge = true;
      this.chunks = [];
      return;
    }
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /** The content it signs, or why it cannot be read; the bytes are let go. */
  open(): CmsContent {
    if (this.tooLarge) return { opaque: `an S/MIME part is larger than ${this.maxBytes} bytes, the most opened for inspection` };
    const der = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
    this.chunks = [];
    return openCms(der);
  }
}
