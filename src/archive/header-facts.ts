import type { Readable } from 'node:stream';
import libmime from 'libmime';
import { headerEnd, headerFields, readHeaderSectionOf } from '../protect/header-end.js';

/** Enough of a message to hold its header block (the spool bounds headers too). */
const MAX_HEAD = 256 * 1024;

/**
 * Subject and Message-ID from the header block, for the index. Never throws. Only the
 * header fields count, the section ended as every reader of Postern ends it
 * (protect/header-end.ts): a "Subject:" line among the body lines of a message sent
 * without the blank line is body text, and must not become the indexed subject.
 */
export function headerFacts(head: Buffer): { subject: string; messageId?: string | undefined } {
  const fields = headerFields(head.toString('latin1', 0, headerEnd(head).fields));
  const field = (name: string) => {
    const found = fields.find((f) => new RegExp(`^${name}[ \\t]*:`, 'i').test(f));
    return found?.slice(found.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
  };
  const rawSubject = field('subject') ?? '';
  let subject = rawSubject;
  try {
    subject = libmime.decodeWords(Buffer.from(rawSubject, 'latin1').toString('utf8'));
  } catch {
    // keep the raw text: a bad encoded word must not stop journaling
  }
  return { subject, messageId: field('message-id') };
}

/** The first bytes of a body, read no further than its header section (or MAX_HEAD). */
export async function readHead(body: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body.subarray(0, MAX_HEAD);
  return (await readHeaderSectionOf(body, MAX_HEAD)).read.subarray(0, MAX_HEAD);
}
