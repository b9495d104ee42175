import { headerEnd, type HeaderEnd } from '../protect/header-end.js';
import { HeaderSectionTransform } from '../protect/header-stream.js';

const CRLF = Buffer.from('\r\n');

/**
 * A message whose sender left out the blank line after its headers has its first body
 * lines in the header section. Mail clients show them as the body, and the encryption
 * puts them inside (protect/header-end.ts), but mailsplit reads every line up to a blank
 * line as a header field, so the detectors would never see them. The blank line is put
 * where the header section ends, for the splitter to split there too. Any other message
 * comes back as it is.
 */
export function withHeaderBreak(message: Buffer, end: HeaderEnd | undefined = headerEnd(message)): Buffer {
  if (!end || end.body !== end.fields || end.body === message.length) return message;
  return Buffer.concat([message.subarray(0, end.fields), CRLF, message.subarray(end.fields)]);
}

/** withHeaderBreak on a stream: holds back at most `max` bytes (the header section), then passes through. */
export function headerBreakStream(max: number): HeaderSectionTransform {
  return new HeaderSectionTransform(withHeaderBreak, max);
}
