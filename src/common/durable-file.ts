import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes a file atomically and durably: temp name, fsync, rename, then fsync of the
 * directory so the new name survives a crash too.
 */
export async function writeFileDurably(path: string, data: Buffer | string, mode = 0o600): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDirectory(dirname(path));
}

export async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
