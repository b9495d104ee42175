import { open, rename } from 'node:fs/promises';

/** Writes a file atomically and durably: temp name, fsync, rename. */
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
}
