import { chainInUse } from './chain-writer.js';
import { ADMIN_CHAIN, type ArchiveLayout } from './layout.js';
import type { ArchiveReader } from './reader.js';
import { latestSegment } from './segment-appender.js';
import { readSegmentPointer } from './segment-pointer.js';

/**
 * Segment files a running journal may still append to: for each chain a process has
 * open, the one its pointer names (segment-pointer.ts), else (a chain last started
 * before pointers existed) its highest-numbered one. They must not be replaced
 * (rotation) or removed (purge): the writer would go on appending to a file no longer
 * in place, and what it appended would be lost.
 */
export async function activeSegments(reader: ArchiveReader, layout: ArchiveLayout): Promise<Set<string>> {
  const active = new Set<string>();
  for (const chain of await reader.chainNames()) {
    if (chain === ADMIN_CHAIN || !(await chainInUse(layout.chainsDir, chain))) continue;
    const pointed = await readSegmentPointer(layout, chain);
    const path = pointed ? layout.resolve(pointed.file) : (await latestSegment(layout, chain))?.path;
    if (path) active.add(path);
  }
  return active;
}
