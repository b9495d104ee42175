import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Writes an export stream to a file only its owner can read; on failure the file goes (never one that looks complete). */
export async function writeExport(stream: Readable, out: string): Promise<void> {
  try {
    await pipeline(stream, createWriteStream(out, { mode: 0o600 }));
  } catch (err) {
    await rm(out, { force: true });
    throw err;
  }
}
