/**
 * Reads the header block of a message as it streams past (bounded), so ingress can
 * enforce the header size limit and the loop guard without parsing the whole message.
 */
export class HeaderScanner {
  private parts: Buffer[] = [];
  private bytes = 0;
  /**
   * Last 3 bytes of the previous chunk, to find a CRLFCRLF split across chunks. It starts
   * as the line end before the first header line, so that a message beginning with an
   * empty line (no header fields at all) ends its header section there, instead of its
   * body being read as headers (and refused as too large, or as a loop).
   */
  private tail: Buffer = Buffer.from('\r\n');
  done = false;
  tooLarge = false;
  private headerText = '';

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    if (this.done) return;
    const joined = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const end = joined.indexOf('\r\n\r\n');
    const take = end === -1 ? chunk.length : end + 4 - this.tail.length;
    const part = chunk.subarray(0, Math.max(0, take));
    this.bytes += part.length;
    if (this.bytes > this.maxBytes) {
      this.tooLarge = true;
      this.finish();
      return;
    }
    this.parts.push(part);
    if (end !== -1) this.finish();
    else this.tail = joined.subarray(Math.max(0, joined.length - 3));
  }

  /** End of DATA without a blank line: the whole message was header. */
  end(): void {
    if (!this.done) this.finish();
  }

  /** Unfolded header fields as [lower-case name, value]. */
  fields(): [string, string][] {
    const out: [string, string][] = [];
    for (const line of this.headerText.split(/\r\n(?![ \t])/)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      out.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).replace(/\r\n[ \t]/g, ' ').trim()]);
    }
    return out;
  }

  private finish(): void {
    this.done = true;
    this.headerText = Buffer.concat(this.parts).toString('latin1');
    this.parts = [];
    this.tail = Buffer.alloc(0);
  }
}
