import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { LinePosition } from './audit-file-io.js';

/**
 * When the file outbox moves what is left in its oldest file: once the events still
 * pending there take at most this share of a file (an eighth: 1 MB of 8), they are copied
 * into the newest file and the oldest is deleted. One failing delivery no longer keeps
 * every later file (all webhook traffic of its giveUpAfter) on disk, to be re-read at each
 * start. A file kept is more than an eighth pending, so the outbox is at most about eight
 * times what is pending, and each copy costs at most an eighth of a file per file written.
 */
export const COMPACT_SHARE = 8;

/** Whether the lines at these positions take at most `limit` bytes; stops counting once over (the oldest file may hold 100,000). */
export function fitsIn(positions: Iterable<{ pos: LinePosition }>, limit: number): boolean {
  let bytes = 0;
  for (const { pos } of positions) {
    bytes += pos.length + 1;
    if (bytes > limit) return false;
  }
  return true;
}

/** Reads lines of one file back, in the order given, through one file handle. */
export async function readLines(dir: string, file: string, positions: LinePosition[]): Promise<string[]> {
  const fh = await open(join(dir, file), 'r');
  try {
    const out: string[] = [];
    for (const pos of positions) {
      const buf = Buffer.alloc(pos.length);
      const { bytesRead } = await fh.read(buf, 0, pos.length, pos.offset);
      if (bytesRead !== pos.length) throw new Error(`${file}: line at ${pos.offset} is cut short`);
      out.push(buf.toString('utf8'));
    }
    return out;
  } finally {
    await fh.close();
  }
}
