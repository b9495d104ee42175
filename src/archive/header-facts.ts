import type { Readable } from 'node:stream';
import libmime from 'libmime';

/** Enough of a message to hold its header block (the spool bounds headers too). */
const MAX_HEAD = 256 * 1024;

/** Subject and Message-ID from the header block, for the index. Never throws. */
export function headerFacts(head: Buffer): { subject: string; messageId?: string | undefined } {
  let end = head.indexOf('\r\n\r\n');
  if (end === -1) end = head.indexOf('\n\n');
  const text = head.subarray(0, end === -1 ? head.length : end).toString('latin1');
  const unfolded = text.replace(/\r?\n[ \t]+/g, ' ');
  const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(unfolded)?.[1]?.trim();
  const rawSubject = field('subject') ?? '';
  let subject = rawSubject;
  try {
    subject = libmime.decodeWords(Buffer.from(rawSubject, 'latin1').toString('utf8'));
  } catch {
    // keep the raw text: a bad encoded word must not stop journaling
  }
  return { subject, messageId: field('message-id') };
}

/** The first bytes of a body, up to the end of its header block. */
export async function readHead(body: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body.subarray(0, MAX_HEAD);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const c of body) {
      chunks.push(c as Buffer);
      total += (c as Buffer).length;
      if (total >= MAX_HEAD || (c as Buffer).includes('\r\n\r\n') || (c as Buffer).includes('\n\n')) break;
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, MAX_HEAD);
}
