import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeFileDurably } from '../common/durable-file.js';
import type { ArchiveLayout } from './layout.js';

/**
 * chains/<chain>.segment: the segment file (relative to the archive root) the chain's
 * appender writes to, or is about to create. Written, durably, BEFORE the segment is
 * created and so before anything is appended to it: rotation and purge, which must not
 * replace or remove a file a running gateway appends to, read it (active-segments.ts)
 * instead of guessing from file names and dates, which a clock that stepped back
 * makes wrong. It is also where a restarted appender takes its next segment number from.
 */
export const segmentPointerPath = (layout: ArchiveLayout, chain: string): string => join(layout.chainsDir, `${chain}.segment`);

export async function writeSegmentPointer(layout: ArchiveLayout, chain: string, file: string): Promise<void> {
  await writeFileDurably(segmentPointerPath(layout, chain), `${file}\n`);
}

/**
 * The segment the pointer names, or undefined when there is none (a chain last written
 * before pointers existed) or it does not name one of this chain's segments (edited by
 * hand): callers then fall back to the highest-numbered segment on disk.
 */
export async function readSegmentPointer(layout: ArchiveLayout, chain: string): Promise<{ n: number; file: string } | undefined> {
  let text: string;
  try {
    text = await readFile(segmentPointerPath(layout, chain), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const file = text.trim();
  const n = layout.segmentNumber(chain, basename(file));
  if (n === undefined || !/^items\/\d{4}\/\d{2}\/\d{2}\/[^/]+$/.test(file)) return undefined;
  return { n, file };
}
