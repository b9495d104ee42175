import { Readable } from 'node:stream';
import { writeExport } from './export-file.js';
import type { ArchiveReader } from './reader.js';
import type { SearchHit } from './search.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** asctime(3) form of the mbox "From " line, in UTC: "Thu Jan  1 00:00:00 2025". */
function asctime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/**
 * One mboxrd entry: the "From " separator line, the message with LF line endings and
 * every line matching /^>*From / given one more ">" (reversible, unlike mboxo), then a
 * blank line. latin1 keeps 8-bit bytes as they are.
 */
export function mboxrdEntry(sender: string, receivedAt: number, raw: Buffer): Buffer {
  const text = raw.toString('latin1').replace(/\r\n/g, '\n').replace(/^(>*From )/gm, '>$1');
  const from = `From ${sender.replace(/\s/g, '_') || 'MAILER-DAEMON'} ${asctime(new Date(receivedAt))}\n`;
  return Buffer.from(`${from}${text}${text.endsWith('\n') ? '' : '\n'}\n`, 'latin1');
}

/**
 * The mbox as a stream, each item decrypted when its turn comes (never all at once, and
 * never on disk in clear). A failure destroys the stream: a reader sees a cut-off
 * transfer, never an mbox that looks complete.
 */
export function mboxStream(reader: ArchiveReader, hits: SearchHit[]): Readable {
  async function* entries() {
    for (const h of hits) yield mboxrdEntry(h.meta.mailFrom, h.meta.receivedAt, await reader.content(h.entry));
  }
  return Readable.from(entries(), { objectMode: false });
}

/** The mbox written to a file (the CLI); a failed export leaves no file. */
export async function exportMbox(reader: ArchiveReader, hits: SearchHit[], out: string): Promise<{ count: number }> {
  await writeExport(mboxStream(reader, hits), out);
  return { count: hits.length };
}
