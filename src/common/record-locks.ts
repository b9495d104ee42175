import { open, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** A lock file this old was left by a process that died holding it (a change takes milliseconds). */
const STALE_MS = 30_000;
/** How long a change waits for the lock before it gives up with an error. */
const WAIT_MS = 10_000;

/**
 * Read-modify-write of one record file as one step. Within the process, changes to one
 * file run one after another; across processes (gateway workers, `postern portal
 * revoke`, the admin API) each change holds `<file>.lock`, created exclusively. The
 * portal's records and the key store's use it. Without
 * both, a change made from what was read before another one (a read receipt, a revoke)
 * silently undoes it.
 */
export class RecordLocks {
  private readonly chains = new Map<string, Promise<unknown>>();

  run<T>(file: string, step: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(file) ?? Promise.resolve();
    const result = previous.then(() => withLockFile(file, step));
    const tail = result.catch(() => undefined);
    this.chains.set(file, tail);
    // The map holds only files with a change in flight.
    void tail.then(() => {
      if (this.chains.get(file) === tail) this.chains.delete(file);
    });
    return result;
  }
}

async function withLockFile<T>(file: string, step: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      await (await open(lock, 'wx', 0o600)).close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const age = await stat(lock).then(
      (s) => Date.now() - s.mtimeMs,
      () => undefined, // released in between: try again at once
    );
    if (age === undefined) continue;
    if (age > STALE_MS) {
      await rm(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${file} stayed locked for ${WAIT_MS} ms (${lock}); try again`);
    await sleep(2 + Math.random() * 8);
  }
  try {
    return await step();
  } finally {
    await rm(lock, { force: true });
  }
}
