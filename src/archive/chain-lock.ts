import { join, resolve } from 'node:path';
import { acquireLockPatiently, LockBusy, type Lock } from '../queue/fs/lock.js';

/** Another appender has the chain: it did not let go within the wait. */
export class ChainBusy extends Error {
  constructor(
    readonly chain: string,
    detail: string,
  ) {
    // "in use by another process": what the retention job looks for to skip a round quietly.
    super(`archive chain ${chain} is in use by another process (${detail})`);
    this.name = 'ChainBusy';
  }
}

/**
 * Per chain, in this process: present while one task has the chain (or is taking its
 * lock file), with the tasks waiting their turn, first come first served. The lock file
 * orders processes; this orders the tasks of one process (two admin API calls at once),
 * without polling.
 */
const turns = new Map<string, (() => void)[]>();

const keyOf = (chainsDir: string, name: string) => resolve(chainsDir, `${name}.log`);

/** Whether a task of this process has the chain, or is taking it. */
export const chainHeldHere = (chainsDir: string, name: string): boolean => turns.has(keyOf(chainsDir, name));

/**
 * The chain for appending, for this task alone: its turn in this process, then its lock
 * file (other processes), waiting up to `waitMs` in all. ChainBusy when that runs out.
 */
export async function lockChain(chainsDir: string, name: string, waitMs: number): Promise<Lock> {
  const key = keyOf(chainsDir, name);
  const deadline = Date.now() + waitMs;
  await takeTurn(key, name, waitMs);
  let file: Lock;
  try {
    file = await acquireLockPatiently(join(chainsDir, `${name}.lock`), Math.max(0, deadline - Date.now()));
  } catch (err) {
    passTurn(key);
    throw err instanceof LockBusy ? new ChainBusy(name, err.message.replace(/^spool /, '')) : err;
  }
  let released: Promise<void> | undefined;
  return { release: () => (released ??= file.release().finally(() => passTurn(key))) };
}

function takeTurn(key: string, name: string, waitMs: number): Promise<void> {
  const queue = turns.get(key);
  if (!queue) {
    turns.set(key, []);
    return Promise.resolve();
  }
  const busy = () => new ChainBusy(name, `another task of this process (pid ${process.pid}) has it open${waitMs > 0 ? ` and did not let go within ${waitMs} ms` : ''}`);
  if (waitMs <= 0) return Promise.reject(busy());
  return new Promise<void>((resolve, reject) => {
    const turn = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      const i = queue.indexOf(turn);
      if (i >= 0) queue.splice(i, 1);
      reject(busy());
    }, waitMs);
    queue.push(turn);
  });
}

/** Hands the chain to the next waiting task, or frees it. */
function passTurn(key: string): void {
  const next = turns.get(key)?.shift();
  if (next) next();
  else turns.delete(key);
}
