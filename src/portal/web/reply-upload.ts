import type { Multipart, MultipartFile } from '@fastify/multipart';

export interface ReplyFile {
  filename: string;
  content: Buffer;
  contentType?: string | undefined;
}

/** A reply form read whole, or why reading stopped (what was left of the body is unread). */
export type ReplyUpload = { outcome: 'read'; fields: Record<string, string | undefined>; files: ReplyFile[] } | { outcome: 'csrf-refused' } | { outcome: 'too-large' };

/**
 * The most the files of one reply may hold together. The reply becomes a mail message,
 * which must not be larger than the gateway accepts (smtp.limits.maxMessageSize), and in
 * it base64 turns every 57 bytes of a file into a line of 78 (76 characters and CRLF).
 */
export function replyFilesLimit(maxMessageSize: number): number {
  return Math.floor((maxMessageSize * 57) / 78);
}

/**
 * Reads a multipart reply form in the order the browser sends it (document order: the
 * portal's form has its hidden csrf field first). The first part must be that field with
 * a valid token, so nothing of a forged upload is read; the files are buffered only while
 * they stay within `filesLimit` together. When reading stops, the part in hand is
 * destroyed, which makes the multipart parser let go of the request; the caller must end
 * the connection with its answer, since the rest of the body stays unread.
 */
export async function readReplyUpload(parts: AsyncIterator<Multipart>, csrfOk: (token: string) => boolean, filesLimit: number): Promise<ReplyUpload> {
  const first = await parts.next();
  if (first.done || !isValidCsrfField(first.value, csrfOk)) {
    if (!first.done) abandon(first.value);
    return { outcome: 'csrf-refused' };
  }
  const fields: Record<string, string | undefined> = {};
  const files: ReplyFile[] = [];
  let filesBytes = 0;
  for (let next = await parts.next(); !next.done; next = await parts.next()) {
    const part = next.value;
    if (part.type === 'field') {
      // The token was checked in the first part; a second one changes nothing.
      if (part.fieldname !== 'csrf') fields[part.fieldname] = String(part.value);
      continue;
    }
    const content = await readFileWithin(part, filesLimit - filesBytes);
    if (!content) return { outcome: 'too-large' };
    filesBytes += content.length;
    // A file input left empty still sends a part, without a name or content.
    if (part.filename && content.length) files.push({ filename: part.filename, content, contentType: part.mimetype });
  }
  return { outcome: 'read', fields, files };
}

function isValidCsrfField(part: Multipart, csrfOk: (token: string) => boolean): boolean {
  return part.type === 'field' && part.fieldname === 'csrf' && typeof part.value === 'string' && csrfOk(part.value);
}

/** A file part never read: destroying it ends the parser's reading of the request. */
function abandon(part: Multipart): void {
  if (part.type === 'file') part.file.destroy();
}

/**
 * The file's content, or undefined as soon as it is more than `budget` bytes or the
 * parser cut it at its own per-file limit. Leaving the loop early destroys the stream.
 */
async function readFileWithin(part: MultipartFile, budget: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of part.file as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > budget) return undefined;
    chunks.push(chunk);
  }
  return part.file.truncated ? undefined : Buffer.concat(chunks);
}
