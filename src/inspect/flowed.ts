/**
 * A `format=flowed` text/plain part (RFC 3676) as its reader sees it: a line ending in a
 * space is soft-broken and continues on the next line of the same quote depth, so
 * `123-45-` + ` \r\n` + `6789` reads `123-45-6789` with `delsp=yes` (the space is the
 * sender's, added to break there) and `123-45- 6789` without. For the detectors only.
 *
 * What it changes: each soft break (with the trailing space when delsp) and the next line's
 * quote markers and stuffing space are cut out; every other character stays where it was,
 * the first line of a paragraph included (its quote markers and stuffing space change no
 * detection). The signature separator `-- ` is never flowed.
 *
 * Written here rather than taken from libmime (decodeFlowed, which mailsplit uses): that
 * one splits the text into lines, joins and rewrites it, some 40 ms per MB; this is one
 * forward pass, and a text without a soft break, the usual case, is returned as it is
 * after one search.
 */
export function unflow(text: string, delSp: boolean): string {
  if (!SOFT_BREAK.test(text)) return text;
  let out = '';
  let copied = 0; // text[copied...] is not in `out` yet
  let softDepth = -1; // the quote depth of the line before, when it ended in a soft break
  let joinFrom = 0; // where the line before is cut when the next one continues it
  for (let start = 0; ; ) {
    const lf = text.indexOf('\n', start);
    const end = lf === -1 ? text.length : lf > start && text.charCodeAt(lf - 1) === CR ? lf - 1 : lf;
    let depth = 0;
    while (text.charCodeAt(start + depth) === GT) depth++;
    const contentStart = start + depth + (text.charCodeAt(start + depth) === SPACE ? 1 : 0);
    if (depth === softDepth) {
      out += text.slice(copied, joinFrom);
      copied = contentStart;
    }
    const soft = end > contentStart && text.charCodeAt(end - 1) === SPACE && !isSignatureSeparator(text, contentStart, end);
    softDepth = soft ? depth : -1;
    joinFrom = delSp ? end - 1 : end;
    if (lf === -1) break;
    start = lf + 1;
  }
  return out + text.slice(copied);
}

/** A space before a line break: the only place a soft break can be. */
const SOFT_BREAK = / \r?\n/;
const CR = 0x0d;
const GT = 0x3e;
const SPACE = 0x20;

function isSignatureSeparator(text: string, start: number, end: number): boolean {
  return end - start === 3 && text.startsWith('-- ', start);
}
