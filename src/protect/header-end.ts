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
