import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { discard, place, refuseExisting, writeTemp, type PendingFile } from './export-file.js';
import { manifestEntry, sha256, type ManifestEntry } from './export-manifest.js';
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
 * A message in an mbox manifest: `sha256` is of the original message (as in a zip
 * export); `offset` and `length` say where its entry is in the mbox file, `entrySha256`
 * is of those bytes (the entry is the message re-encoded, see mboxrdEntry).
 */
export interface MboxManifestEntry extends ManifestEntry {
  offset: number;
  length: number;
  entrySha256: string;
}

/**
 * The mbox as a stream, each item decrypted when its turn comes (never all at once, and
 * never on disk in clear). A failure destroys the stream: a reader sees a cut-off
 * transfer, never an mbox that looks complete. `manifest` collects each entry as written.
 */
export function mboxStream(reader: ArchiveReader, hits: SearchHit[], manifest?: MboxManifestEntry[]): Readable {
  async function* entries() {
    let offset = 0;
    for (const h of hits) {
      const raw = await reader.content(h.entry);
      const entry = mboxrdEntry(h.meta.mailFrom, h.meta.receivedAt, raw);
      manifest?.push({ ...manifestEntry(h.meta, raw.length, sha256(raw)), offset, length: entry.length, entrySha256: sha256(entry) });
      offset += entry.length;
      yield entry;
    }
  }
  return Readable.from(entries(), { objectMode: false });
}

/** Where the CLI writes an mbox export's manifest: next to it. */
export const mboxManifestPath = (out: string) => `${out}.manifest.json`;

/**
 * The mbox written to a file (the CLI), then its manifest next to it (mboxManifestPath):
 * the whole file's SHA-256 and size, and each message (MboxManifestEntry). Both are
 * written as temp files and placed once both are whole, the manifest first: a failed or
 * interrupted export leaves neither file (export-file.ts). An existing target (either
 * one) is refused unless `force`.
 */
export async function exportMbox(reader: ArchiveReader, hits: SearchHit[], out: string, incomplete: string[] = [], force = false): Promise<{ count: number; manifest: string }> {
  const manifest = mboxManifestPath(out);
  await refuseExisting([out, manifest], force);
  const messages: MboxManifestEntry[] = [];
  const mbox = await writeTemp(mboxStream(reader, hits, messages), out);
  let doc: PendingFile;
  try {
    // Of the file as it is on disk.
    const whole = createHash('sha256');
    let bytes = 0;
    for await (const c of createReadStream(mbox.tmp)) {
      whole.update(c as Buffer);
      bytes += (c as Buffer).length;
    }
    const text = { format: 'mboxrd', file: basename(out), bytes, sha256: whole.digest('hex'), exportedAt: new Date().toISOString(), count: hits.length, complete: incomplete.length === 0, incomplete, messages };
    doc = await writeTemp(`${JSON.stringify(text, null, 2)}\n`, manifest);
  } catch (err) {
    await discard([mbox]);
    throw err;
  }
  await place([doc, mbox], force);
  return { count: hits.length, manifest };
}
