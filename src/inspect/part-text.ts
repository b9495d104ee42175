import { isAscii } from 'node:buffer';
import type { MimeNode } from '@zone-eu/mailsplit';
import iconv from 'iconv-lite';
import { unflow } from './flowed.js';
import { htmlToPlainText } from './html-text.js';
import { foldForDetection } from './unicode-fold.js';

/**
 * The text the detectors read from a text part's decoded bytes: read in its charset, then
 * as its reader sees it: HTML as the text a browser shows, format=flowed with its soft
 * line breaks joined, and any text with its look-alike characters folded to ASCII
 * (unicode-fold.ts). The message itself is never changed.
 */
export function detectionText(bytes: Buffer, node: MimeNode, html: boolean): string {
  const charset = (node.charset || 'utf-8').toLowerCase();
  const decoded = decodeCharset(bytes, charset);
  if (html) return htmlToPlainText(decoded);
  // mailsplit sets flowed for text/plain only (RFC 3676 defines it for no other type).
  const text = node.flowed ? unflow(decoded, node.delSp) : decoded;
  // The fast path for the usual part: ASCII bytes in a charset that maps them to themselves
  // hold nothing to fold, and saying so costs a SIMD pass over the bytes instead of a search.
  return ASCII_SUPERSETS.test(charset) && isAscii(bytes) ? text : foldForDetection(text);
}

/**
 * Charsets in which ASCII bytes are ASCII text. Not UTF-7, ISO-2022-* or HZ, which write
 * other characters with ASCII bytes (`+AC0-`), nor UTF-16 or UTF-32.
 */
const ASCII_SUPERSETS = /^(?:us-?ascii|ascii|utf-?8|iso-?8859-\d+|latin-?\d|windows-125\d|cp-?125\d)$/;

/**
 * Text in its declared charset. iconv-lite first: TextDecoder reads UTF-16 without a BOM
 * as little-endian (RFC 2781 says big-endian) and knows neither UTF-7 nor UTF-32.
 */
function decodeCharset(bytes: Buffer, name: string): string {
  try {
    if (iconv.encodingExists(name)) return iconv.decode(bytes, name, { defaultEncoding: BIG_ENDIAN_DEFAULT[name] });
    return new TextDecoder(name, { fatal: false }).decode(bytes);
  } catch {
    return bytes.toString('latin1'); // unknown charset: still scan the ASCII in it
  }
}

/**
 * Charsets that name no byte order: a BOM decides, else iconv-lite's guess from the
 * text, else big-endian as RFC 2781 says (iconv-lite's own default is little-endian).
 */
const BIG_ENDIAN_DEFAULT: Record<string, 'utf16be' | 'utf32be' | undefined> = { 'utf-16': 'utf16be', utf16: 'utf16be', 'utf-32': 'utf32be', utf32: 'utf32be' };
