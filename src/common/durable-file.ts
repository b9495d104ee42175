import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes a file atomically and durably: a temp file of its own, fsync, rename, then
 * fsync of the directory so the new name survives a crash too. The temp name is unique
 * (pid and random bytes, created exclusively): two writes of one file at once, in one
 * process or two, each rename a whole file of their own, and the last rename wins. One
 * shared temp name let them write into the same file and rename it from under each other.
 */
export async function writeFileDurably(path: string, data: Buffer | string, mode = 0o600): Promise<void> {
  const tmp = tempNameFor(path);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dirname(path));
}

/** `<path>.<pid>-<random>.tmp`: readers that list a directory by suffix skip it. */
export function tempNameFor(path: string): string {
  return `${path}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
}

export async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
