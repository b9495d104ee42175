import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import yazl from 'yazl';
import { writeExport } from './export-file.js';
import { incompleteNote, manifestEntry, type ManifestEntry } from './export-manifest.js';
import type { ArchiveReader } from './reader.js';
import type { SearchHit } from './search.js';

/**
 * A zip of one .eml per item, plus MANIFEST.sha256 (sha256sum -c format) and
 * manifest.json (per file: queue id, date, sender, recipients, subject, message-id,
 * size, SHA-256), as a stream. Items are decrypted one at a time as the zip is read, so
 * an export of many large items never holds them all and nothing is written in clear;
 * the hashes are taken on the way. A failure destroys the stream (a cut-off transfer,
 * never a zip that looks complete). `incomplete`: why the search behind it may have
 * missed messages (--allow-partial), written first as INCOMPLETE.txt.
 */
export function zipStream(reader: ArchiveReader, hits: SearchHit[], incomplete: string[] = []): Readable {
  const zip = new yazl.ZipFile();
  const manifest: ({ file: string } & ManifestEntry)[] = [];
  if (incomplete.length) zip.addBuffer(Buffer.from(incompleteNote(incomplete)), 'INCOMPLETE.txt');
  hits.forEach((h, i) => {
    const file = `messages/${String(i + 1).padStart(5, '0')}-${h.meta.id}.eml`;
    zip.addReadStreamLazy(file, { mtime: new Date(h.meta.receivedAt) }, (cb) => {
      reader.contentStream(h.entry).then((content) => {
        const hash = createHash('sha256');
        let size = 0;
        const tap = new PassThrough();
        tap.on('data', (c: Buffer) => {
          hash.update(c);
          size += c.length;
        });
        tap.on('end', () => manifest.push({ file, ...manifestEntry(h.meta, size, hash.digest('hex')) }));
        // yazl does not listen for errors on entry streams: a failure ends the export.
        tap.on('error', (err) => zip.emit('error', err));
        content.on('error', (err) => tap.destroy(err));
        cb(null, content.pipe(tap));
      }, (err: unknown) => cb(err, new PassThrough()));
    });
  });
  // Called only after every message entry has been read, so the manifest is complete.
  zip.addReadStreamLazy('MANIFEST.sha256', (cb) => cb(null, Readable.from([manifest.map((m) => `${m.sha256}  ${m.file}\n`).join('')])));
  zip.addReadStreamLazy('manifest.json', (cb) => cb(null, Readable.from([`${JSON.stringify(manifest, null, 2)}\n`])));
  zip.end();
  const out = zip.outputStream as PassThrough;
  zip.on('error', (err: Error) => out.destroy(err));
  return out;
}

/** The zip written to a file (the CLI): a failed or interrupted export leaves no file; an existing one is refused unless `force` (export-file.ts). */
export async function exportZip(reader: ArchiveReader, hits: SearchHit[], out: string, incomplete: string[] = [], force = false): Promise<{ count: number }> {
  await writeExport(() => zipStream(reader, hits, incomplete), out, force);
  return { count: hits.length };
}
