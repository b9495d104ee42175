import { stat } from 'node:fs/promises';
import { activeSegments } from './active-segments.js';
import type { RotateRecord } from './chain-record.js';
import type { ChainWriter } from './chain-writer.js';
import { rewrapFile } from './item-file.js';
import type { ArchiveReader } from './reader.js';

/**
 * Re-wraps every live entry's data key with the first master key (after it was added in
 * front of the old ones), one file at a time, then records the rotation. Content is not
 * re-encrypted. A segment a running gateway is still appending to is skipped (it is
 * replaced by a re-wrapped copy, which the writer would not see): run it again after the
 * gateway has moved on to a new segment (daily, or at restart).
 */
export async function rotateKeys(reader: ArchiveReader, chain: ChainWriter, actor: string): Promise<{ rewrapped: number; keyId: string; skipped: number }> {
  const to = reader.keys[0];
  if (!to) throw new Error('no archive master key');
  const { destroyed } = await reader.adminState();
  const byFile = new Map<string, number[]>();
  for await (const entry of reader.items()) {
    if (destroyed.has(entry.record.id)) continue;
    const path = reader.path(entry);
    byFile.set(path, [...(byFile.get(path) ?? []), entry.record.offset]);
  }
  const active = await activeSegments(reader, reader.layout);
  let rewrapped = 0;
  let skipped = 0;
  for (const [path, offsets] of byFile) {
    if (active.has(path)) {
      skipped += offsets.length;
      continue;
    }
    if (!(await stat(path).then(() => true, () => false))) continue; // verify reports it
    rewrapped += await rewrapFile(path, offsets, reader.keys, to);
  }
  await chain.append<RotateRecord>({ type: 'rotate', keyId: to.id, count: rewrapped, actor });
  return { rewrapped, keyId: to.id, skipped };
}
