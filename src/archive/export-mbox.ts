import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
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

export async function exportMbox(reader: ArchiveReader, hits: SearchHit[], out: string): Promise<{ count: number }> {
  const file = createWriteStream(out, { mode: 0o600 });
  const closed = once(file, 'close');
  try {
    for (const h of hits) {
      if (!file.write(mboxrdEntry(h.meta.mailFrom, h.meta.receivedAt, await reader.content(h.entry)))) await once(file, 'drain');
    }
  } catch (err) {
    file.destroy();
    await closed.catch(() => undefined);
    await rm(out, { force: true }); // never leave an mbox that looks complete
    throw err;
  }
  file.end();
  await closed;
  return { count: hits.length };
}
