import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

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

/**
 * A JSON file written by writeFileDurably, or undefined when there is none or it is not
 * JSON (edited by hand, written by a tool that is not us). Any other read error
 * (permissions, I/O) is thrown: it is not "no record".
 */
export async function readJsonFile<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** Temp files of writes cut short by a crash; one this old is no write in flight in another process. */
const STALE_TEMP_MS = 3_600_000;

/** Removes the temp files (tempNameFor) in `dir` that a crash left behind. */
export async function removeStaleTemps(dir: string, now = Date.now()): Promise<void> {
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.tmp')) continue;
    const file = join(dir, name);
    const s = await stat(file).catch(() => undefined);
    if (s && now - s.mtimeMs > STALE_TEMP_MS) await rm(file, { force: true });
  }
}
