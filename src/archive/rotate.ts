import { stat } from 'node:fs/promises';
import type { RotateRecord } from './chain-record.js';
import type { ChainWriter } from './chain-writer.js';
import { rewrapItemFile } from './item-file.js';
import type { ArchiveReader } from './reader.js';

/**
 * Re-wraps every item's data key with the first master key (after it was added in
 * front of the old ones), then records the rotation. Content is not re-encrypted.
 */
export async function rotateKeys(reader: ArchiveReader, chain: ChainWriter, actor: string): Promise<{ rewrapped: number; keyId: string }> {
  const to = reader.keys[0];
  if (!to) throw new Error('no archive master key');
  const { destroyed } = await reader.adminState();
  let rewrapped = 0;
  for await (const entry of reader.items()) {
    if (destroyed.has(entry.record.id)) continue;
    const path = reader.path(entry);
    if (!(await stat(path).then(() => true, () => false))) continue; // verify reports it
    if (await rewrapItemFile(path, reader.keys, to)) rewrapped++;
  }
  await chain.append<RotateRecord>({ type: 'rotate', keyId: to.id, count: rewrapped, actor });
  return { rewrapped, keyId: to.id };
}
