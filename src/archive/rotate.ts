import { rm, stat } from 'node:fs/promises';
import { activeSegments } from './active-segments.js';
import type { RotateRecord } from './chain-record.js';
import { journalChainNames } from './chain-names.js';
import { ChainWriter } from './chain-writer.js';
import { FileChangedDuringRewrap, REWRAP_SUFFIX, rewrapFile } from './item-file.js';
import { filesUnder } from './layout.js';
import type { ArchiveReader } from './reader.js';

/**
 * Re-wraps every live entry's data key with the first master key (after it was added in
 * front of the old ones), one file at a time, then records the rotation. Content is not
 * re-encrypted. A segment a running gateway is still appending to is skipped (it is
 * replaced by a re-wrapped copy, which the writer would not see), and so is a file that
 * changed while it was copied: run it again after the gateway has moved on to a new
 * segment (daily, or at restart). Runs under the admin chain's lock (the caller's
 * `chain`), so no other rotation is under way: copies an earlier one left are removed first.
 */
export async function rotateKeys(reader: ArchiveReader, chain: ChainWriter, actor: string): Promise<{ rewrapped: number; keyId: string; skipped: number; headsSkipped: number }> {
  const to = reader.keys[0];
  if (!to) throw new Error('no archive master key');
  const { destroyed } = await reader.adminState();
  const byFile = new Map<string, number[]>();
  for await (const entry of reader.items()) {
    if (destroyed.has(entry.record.id)) continue;
    const path = reader.path(entry);
    byFile.set(path, [...(byFile.get(path) ?? []), entry.record.offset]);
  }
  await removeRewrapLeftovers(reader.layout.itemsDir);
  const active = await activeSegments(reader, reader.layout);
  let rewrapped = 0;
  let skipped = 0;
  for (const [path, offsets] of byFile) {
    if (active.has(path)) {
      skipped += offsets.length;
      continue;
    }
    if (!(await stat(path).then(() => true, () => false))) continue; // verify reports it
    try {
      rewrapped += await rewrapFile(path, offsets, reader.keys, to);
    } catch (err) {
      if (!(err instanceof FileChangedDuringRewrap)) throw err;
      skipped += offsets.length;
    }
  }
  await chain.append<RotateRecord>({ type: 'rotate', keyId: to.id, count: rewrapped, actor });
  return { rewrapped, keyId: to.id, skipped, headsSkipped: await resignHeads(reader) };
}

/**
 * Chain heads are authenticated with the first master key (chain-head.ts): opening a
 * chain signs its head again with it. The admin chain's was by the rotate record; a
 * running gateway did its own when it started with the new key first. Returns how
 * many could not be (in use, or not intact: verify says why).
 */
async function resignHeads(reader: ArchiveReader): Promise<number> {
  let skipped = 0;
  for (const name of await journalChainNames(reader.layout)) {
    await ChainWriter.open(reader.layout.chainsDir, name, reader.keys, { lockWaitMs: 0 }).then(
      (w) => w.close(),
      () => skipped++,
    );
  }
  return skipped;
}

/**
 * Copies (<file>.rewrap) a rotation cut short left behind: they hold wrapped keys of
 * items that a purge may destroy since, and nothing else reads them. Only called under
 * the admin chain's lock, when no rotation is writing one.
 */
export async function removeRewrapLeftovers(dir: string): Promise<number> {
  let removed = 0;
  for await (const { path } of filesUnder(dir)) {
    if (!path.endsWith(REWRAP_SUFFIX)) continue;
    await rm(path, { force: true });
    removed++;
  }
  return removed;
}
