import { chainInUse } from './chain-writer.js';
import { ADMIN_CHAIN, type ArchiveLayout } from './layout.js';
import type { ArchiveReader } from './reader.js';
import { latestSegment } from './segment-appender.js';

/**
 * Segment files a running journal may still append to (the newest of each chain that a
 * process has open). They must not be replaced (rotation) or removed (purge): the writer
 * would go on appending to a file no longer in place.
 */
export async function activeSegments(reader: ArchiveReader, layout: ArchiveLayout): Promise<Set<string>> {
  const active = new Set<string>();
  for (const chain of await reader.chainNames()) {
    if (chain === ADMIN_CHAIN || !(await chainInUse(layout.chainsDir, chain))) continue;
    const seg = await latestSegment(layout, chain);
    if (seg) active.add(seg.path);
  }
  return active;
}
