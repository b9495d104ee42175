import { headerFields, HeaderEndScanner } from '../protect/header-end.js';

/**
 * Reads the header section of a message as it streams past (bounded), so ingress can
 * enforce the header size limit and the loop guard without parsing the whole message.
 * The section ends where every other reader of Postern ends it (protect/header-end.ts):
 * at the blank line, or at the first line that is no header field. A script that forgets
 * the blank line sends its body in the header section; counting its lines as header
 * refused a long body as a header block over the limit, and a body that quotes a bounce
 * (its Received lines) as a routing loop. Each byte of the section is looked at once, no
 * chunk is copied, and nothing after the section is read.
 */
export class HeaderScanner {
  private readonly section = new HeaderEndScanner();
  private parts: Buffer[] = [];
  /** Header bytes so far, the blank line included (what the limit counts). */
  private bytes = 0;
  done = false;
  tooLarge = false;
  private headerText = '';

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    if (this.done) return;
    const start = this.bytes;
    const end = this.section.push(chunk);
    // The end may lie before this chunk: a line begun in the last one, ruled out here.
    const part = end ? chunk.subarray(0, Math.max(0, end.body - start)) : chunk;
    this.bytes += part.length;
    if (this.bytes > this.maxBytes) {
      this.tooLarge = true;
      this.finish(0);
      return;
    }
    this.parts.push(part);
    if (end) this.finish(end.fields);
  }

  /** End of DATA: a message that is all header fields ends with them. */
  end(): void {
    if (!this.done) this.finish(this.section.finish().fields);
  }

  /** Unfolded header fields as [lower-case name, value]. */
  fields(): [string, string][] {
    const out: [string, string][] = [];
    for (const field of headerFields(this.headerText)) {
      const colon = field.indexOf(':');
      if (colon <= 0) continue;
      out.push([field.slice(0, colon).trim().toLowerCase(), field.slice(colon + 1).replace(/\r?\n[ \t]/g, ' ').trim()]);
    }
    return out;
  }

  /** Keeps the header fields (the first `fields` bytes) as text; nothing more is read. */
  private finish(fields: number): void {
    this.done = true;
    this.headerText = fields > 0 ? Buffer.concat(this.parts).toString('latin1', 0, fields) : '';
    this.parts = [];
  }
}
