import { randomBytes } from 'node:crypto';
import { link, open, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';

export interface Lock {
  release(): Promise<void>;
}

/** The lock is held (by a live process, this one included, or being taken over): wait, or give up. */
export class LockBusy extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockBusy';
  }
}

/**
 * Locks this process holds or is taking, by absolute path. The pid in a lock file cannot
 * tell two holders of one process apart; this can. A lock file with our own pid that is
 * not here was left by an earlier process that had the same pid (a container's gateway
 * is often pid 1 at every start): it is stale like any other dead holder's.
 */
const heldHere = new Set<string>();

/**
 * A lock file without a pid (empty, or not a number) younger than this is treated as
 * held: an older Postern created its lock file empty and wrote the pid after, so a
 * reader in between saw an empty file. Older than this, it is a leftover (a crash in
 * that window, or a file whose data a power loss did not keep).
 */
const UNOWNED_GRACE_MS = 10_000;

interface Owner {
  pid: number | undefined;
  ino: number;
  mtimeMs: number;
}

/**
 * One Postern process per spool (or archive chain, or audit directory): two would write
 * the same files. The lock file holds the owner's pid and appears whole: it is written
 * under a temporary name and linked into place, so nobody ever reads it half written,
 * and link() fails with EEXIST while another holds it. A lock left by a process that no
 * longer exists (kill -9) is taken over, one taker at a time (takeOver).
 */
export async function acquireLock(path: string): Promise<Lock> {
  const key = resolve(path);
  if (heldHere.has(key)) throw new LockBusy(`${path} is locked by running process ${process.pid} (this one): it is already open here`);
  heldHere.add(key);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const ino = await placeLockFile(path);
      if (ino !== undefined) return heldLock(path, key, ino);
      const owner = await ownerOf(path);
      if (!owner) continue; // released meanwhile
      const busy = busyBecause(path, owner);
      if (busy) throw new LockBusy(busy);
      await takeOver(path, owner);
    }
    throw new LockBusy(`cannot take the lock ${path}: other processes keep taking it`);
  } catch (err) {
    heldHere.delete(key);
    throw err;
  }
}

/** The pid of another live process holding a lock file. */
export async function lockHolder(path: string): Promise<number | undefined> {
  const owner = await ownerOf(path);
  return owner?.pid && owner.pid !== process.pid && isAlive(owner.pid) ? owner.pid : undefined;
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
      if (Date.now() >= deadline || !(err instanceof LockBusy)) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A file system without hard links (some FUSE and SMB mounts) answers link() with one of these. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** Links a new file holding our pid to `path`; its inode, or undefined when `path` exists. */
async function placeLockFile(path: string): Promise<number | undefined> {
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, String(process.pid), { flag: 'wx', mode: 0o600 });
  try {
    const { ino } = await stat(tmp);
    await link(tmp, path);
    return ino;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return undefined;
    if (NO_LINKS.has(code)) return createLockFile(path);
    throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Without hard links: created exclusively, then the pid written (a reader in between sees it empty: UNOWNED_GRACE_MS). */
async function createLockFile(path: string): Promise<number | undefined> {
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
  try {
    await fh.writeFile(String(process.pid));
    return (await fh.stat()).ino;
  } finally {
    await fh.close();
  }
}

/** Undefined when there is no lock file. */
async function ownerOf(path: string): Promise<Owner | undefined> {
  try {
    const st = await stat(path);
    const pid = Number((await readFile(path, 'utf8')).trim());
    return { pid: Number.isInteger(pid) && pid > 0 ? pid : undefined, ino: st.ino, mtimeMs: st.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Why the lock is not stale (undefined: it is). Our own pid got here only from an earlier process (heldHere). */
function busyBecause(path: string, owner: Owner): string | undefined {
  if (owner.pid === undefined) {
    return Date.now() - owner.mtimeMs < UNOWNED_GRACE_MS ? `${path} is being locked by another process (the lock file has no pid yet)` : undefined;
  }
  if (owner.pid !== process.pid && isAlive(owner.pid)) {
    return `spool ${path} is locked by running process ${owner.pid}: another Postern instance uses this dataDir (give each instance its own dataDir)`;
  }
  return undefined;
}

/**
 * Removes a stale lock file. Two processes that both found it stale must not both remove
 * it: the second would remove the lock the first has placed by then. So the removal is
 * done under a second lock (`<path>.takeover`), and only when the file is still the
 * stale one (same inode). A takeover lock left by a crash is removed once it is old.
 */
async function takeOver(path: string, stale: Owner): Promise<void> {
  const guard = `${path}.takeover`;
  const guardIno = await placeLockFile(guard);
  if (guardIno === undefined) {
    const st = await stat(guard).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > UNOWNED_GRACE_MS) await unlink(guard).catch(() => undefined);
    throw new LockBusy(`${path} is being taken over from a process that is gone, by another process`);
  }
  try {
    const now = await ownerOf(path);
    if (now && now.ino === stale.ino && !busyBecause(path, now)) await unlink(path).catch(() => undefined);
  } finally {
    await unlink(guard).catch(() => undefined);
  }
}

/** Its release removes the lock file only while it is still the one placed, and only once. */
function heldLock(path: string, key: string, ino: number): Lock {
  let released: Promise<void> | undefined;
  const release = async () => {
    try {
      if ((await stat(path).catch(() => undefined))?.ino === ino) await unlink(path).catch(() => undefined);
    } finally {
      heldHere.delete(key);
    }
  };
  return { release: () => (released ??= release()) };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
