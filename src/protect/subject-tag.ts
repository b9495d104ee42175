import type { Readable } from 'node:stream';
import libmime from 'libmime';
import { headerEnd, type HeaderEnd } from './header-end.js';
import { HeaderSectionTransform } from './header-stream.js';

const MAX_HEADER_BLOCK = 1024 * 1024;

/**
 * Removes the protection tag ("[secure]") from the Subject header before delivery, as
 * the policy says; nothing else in the message changes. Works on an encoded subject too
 * (decoded, tag removed, encoded again).
 */
export function removeSubjectTag(body: Buffer | Readable, tag: string): Buffer | Readable {
  const edit = (message: Buffer, end: HeaderEnd | undefined) => (end ? withoutTag(message, end, tag) : message);
  if (Buffer.isBuffer(body)) return edit(body, headerEnd(body));
  const out = new HeaderSectionTransform(edit, MAX_HEADER_BLOCK);
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

/** The message with the tag removed from the Subject of its header section (header-end.ts); one past the cap is left as it is. */
function withoutTag(message: Buffer, end: HeaderEnd, tag: string): Buffer {
  if (end.fields > MAX_HEADER_BLOCK) return message;
  const rewritten = rewriteHeaderBlock(message.subarray(0, end.fields).toString('latin1'), tag);
  return Buffer.concat([Buffer.from(rewritten, 'latin1'), message.subarray(end.fields)]);
}
