import { open, readFile, unlink } from 'node:fs/promises';

export interface Lock {
  release(): Promise<void>;
}

/**
 * One Postern process per spool: two would lease the same files. The lock file holds
 * the owner's pid; a lock left by a process that no longer exists (kill -9) is taken over.
 */
export async function acquireLock(path: string): Promise<Lock> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return { release: () => unlink(path).catch(() => undefined) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (owner && owner !== process.pid && isAlive(owner)) {
        throw new Error(`spool ${path} is locked by running process ${owner}: another Postern instance uses this dataDir (give each instance its own dataDir)`);
      }
      await unlink(path).catch(() => undefined);
    }
  }
  throw new Error(`cannot take the spool lock ${path}`);
}

/** The pid holding a lock file, if that process is still alive. */
export async function lockHolder(path: string): Promise<number | undefined> {
  const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
  return owner && owner !== process.pid && isAlive(owner) ? owner : undefined;
}

/**
 * Waits up to `timeoutMs` for a lock's holder to go away: after a crash the old worker
 * processes may still be exiting when their replacements start.
 */
export async function acquireLockPatiently(path: string, timeoutMs: number): Promise<Lock> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await acquireLock(path);
    } catch (err) {
      if (Date.now() >= deadline || !/locked by running process/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
