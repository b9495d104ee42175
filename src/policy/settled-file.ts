import { stat, readFile } from 'node:fs/promises';

/**
 * A file's text, or undefined when the file changed while it was read: its size,
 * modification time or inode (an editor's rename) differ before and after. A policy file
 * being written — by an editor saving in place, `cat > policy.yaml`, a deployment tool —
 * can be read half-way; its half must not be applied. The change that moved it signals
 * the watcher again, so the caller reads it once it settles.
 */
export async function readSettled(file: string, read: (file: string) => Promise<string> = (f) => readFile(f, 'utf8')): Promise<string | undefined> {
  const before = await stat(file, { bigint: true });
  const text = await read(file);
  const after = await stat(file, { bigint: true });
  const same = before.size === after.size && before.mtimeNs === after.mtimeNs && before.ino === after.ino && BigInt(Buffer.byteLength(text)) === after.size;
  return same ? text : undefined;
}
