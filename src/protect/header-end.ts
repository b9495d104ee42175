import type { Readable } from 'node:stream';

/**
 * Where a message's header section ends, decided the way receiving MTAs and mail
 * clients decide it (RFC 5322 §2.1, §3.6.8): at the blank line, or earlier, at the first
 * line that is neither a header field (`field-name:`, the name printable US-ASCII other
 * than the colon, obsolete white space before the colon allowed, §4.5.3) nor the folded
 * continuation of one (starting with a space or tab). A script that forgets the blank
 * line after its headers sends its first body lines in the header section: readers show
 * them as the body, so every part of Postern that splits head from body (encryption,
 * inspection, subject tag removal, the sender domain) must split them there too, or
 * those lines leave outside the encryption and unscanned.
 */
export interface HeaderEnd {
  /** Offset just past the last header field, its line break included. */
  fields: number;
  /** Offset of the body: past the blank line when there is one, else equal to `fields`. */
  body: number;
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

/**
 * The end of the header section of `message`. With `complete` false the bytes are the
 * start of a stream: undefined until a complete line shows where the section ends.
 * Lines end in LF, with or without CR before it.
 */
export function headerEnd(message: Buffer): HeaderEnd;
export function headerEnd(message: Buffer, complete: boolean): HeaderEnd | undefined;
export function headerEnd(message: Buffer, complete = true): HeaderEnd | undefined {
  let start = 0;
  while (start < message.length) {
    const lf = message.indexOf(LF, start);
    if (lf === -1 && !complete) return undefined;
    const lineEnd = lf === -1 ? message.length : lf;
    const textEnd = lineEnd > start && message[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
    if (textEnd === start) return { fields: start, body: lf === -1 ? message.length : lf + 1 };
    if (!isFieldLine(message, start, textEnd, start > 0)) return { fields: start, body: start };
    if (lf === -1) break;
    start = lf + 1;
  }
  // Bytes that stop at a line end, every line a field: more may follow (a chunk of a
  // stream), so nothing is decided yet. Deciding here let a later From or Subject escape.
  if (!complete) return undefined;
  return { fields: message.length, body: message.length };
}

/** The header fields of a header section (latin1), each with its folded lines, without the final line break. */
export function headerFields(section: string): string[] {
  return section.split(/\r?\n(?![ \t])/).filter(Boolean);
}

/** A header field's first line, or (after one) a continuation line. */
function isFieldLine(buf: Buffer, start: number, end: number, afterField: boolean): boolean {
  const first = buf[start];
  if (first === SP || first === HT) return afterField;
  let i = start;
  while (i < end && buf[i]! >= 0x21 && buf[i]! <= 0x7e && buf[i] !== COLON) i++;
  if (i === start) return false;
  while (i < end && (buf[i] === SP || buf[i] === HT)) i++;
  return i < end && buf[i] === COLON;
}

/**
 * headerEnd over a stream, chunk by chunk, for readers that must neither hold nor re-read
 * what came before (ingress scans every message before its 250): each byte is looked at
 * once, a field's value only by indexOf for its line end. The end it finds is the one
 * headerEnd finds on the whole message, offsets from the stream's first byte. It is
 * known as soon as the bytes decide it: a line is no field from the first byte that rules
 * one out ("Dear Dr" is not a field name), before its line end, so a long first body
 * line is never held as a possible header.
 */
export class HeaderEndScanner {
  /** The end, once decided. */
  end: HeaderEnd | undefined;
  /** Bytes pushed so far. */
  private seen = 0;
  /** Offset of the line under way. */
  private lineStart = 0;
  /** How far the line under way is read: see LinePhase. */
  private phase: LinePhase = 'start';
  /** A line has been a header field, so a line starting with a space or tab continues it. */
  private afterField = false;

  /** Reads the next chunk; returns the end once decided (in this chunk or before). */
  push(chunk: Buffer): HeaderEnd | undefined {
    if (this.end) return this.end;
    const base = this.seen;
    this.seen += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      if (this.phase === 'field') {
        const lf = chunk.indexOf(LF, i);
        if (lf === -1) return undefined;
        i = lf + 1;
        this.nextLine(base + i);
        continue;
      }
      const b = chunk[i]!;
      const verdict = this.step(b);
      if (verdict === 'blank') return (this.end = { fields: this.lineStart, body: base + i + 1 });
      if (verdict === 'other') return (this.end = { fields: this.lineStart, body: this.lineStart });
      i++;
    }
    return undefined;
  }

  /** The stream ended: where the header section ends, as headerEnd(all bytes) says. */
  finish(): HeaderEnd {
    if (this.end) return this.end;
    // A line under way without its line break: a lone CR is a blank line (headerEnd drops
    // a CR before the end), a field name without its colon is no field.
    if (this.phase === 'cr') return (this.end = { fields: this.lineStart, body: this.seen });
    if (this.phase === 'name' || this.phase === 'space') return (this.end = { fields: this.lineStart, body: this.lineStart });
    return (this.end = { fields: this.seen, body: this.seen });
  }

  /** One byte of a line not yet known to be a field; as isFieldLine decides a whole line. */
  private step(b: number): 'blank' | 'other' | undefined {
    switch (this.phase) {
      case 'start':
        if (b === LF) return 'blank';
        if (b === CR) this.phase = 'cr';
        else if (b === SP || b === HT) {
          if (!this.afterField) return 'other';
          this.phase = 'field';
        } else if (isNameByte(b)) this.phase = 'name';
        else return 'other';
        return undefined;
      case 'cr':
        return b === LF ? 'blank' : 'other';
      case 'name':
        if (b === COLON) this.phase = 'field';
        else if (b === SP || b === HT) this.phase = 'space';
        else if (!isNameByte(b)) return 'other';
        return undefined;
      case 'space':
        if (b === COLON) this.phase = 'field';
        else if (b !== SP && b !== HT) return 'other';
        return undefined;
      default:
        return undefined;
    }
  }

  private nextLine(start: number): void {
    this.lineStart = start;
    this.phase = 'start';
    this.afterField = true;
  }
}

/**
 * How much of a line HeaderEndScanner has read: nothing yet; a CR (a blank line if LF
 * follows); field-name bytes; white space after them; or a colon after those (or a
 * continuation's first space), so the line is a field and only its line end matters.
 */
type LinePhase = 'start' | 'cr' | 'name' | 'space' | 'field';

/** A byte of a field name: printable US-ASCII other than the colon. */
function isNameByte(b: number): boolean {
  return b >= 0x21 && b <= 0x7e && b !== COLON;
}

/**
 * Reads a stream only as far as its header section ends, or until `limit` bytes were read,
 * then destroys it: the rest of the message is never read. `end` is undefined when the
 * limit came first (a stream that ended within it ends its section there).
 */
export async function readHeaderSectionOf(stream: Readable, limit: number): Promise<{ read: Buffer; end: HeaderEnd | undefined }> {
  const chunks: Buffer[] = [];
  const section = new HeaderEndScanner();
  let size = 0;
  let end: HeaderEnd | undefined;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      end = section.push(chunk);
      if (end || size >= limit) break;
    }
    end ??= size < limit ? section.finish() : undefined;
  } finally {
    stream.destroy();
  }
  return { read: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), end };
}
