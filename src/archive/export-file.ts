import { constants, rmSync } from 'node:fs';
import { link, lstat, open, rename, rm, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { syncDirectory, tempNameFor } from '../common/durable-file.js';

/**
 * Export files (the CLI's; the admin API streams exports and writes none). Clear text
 * of archived mail, so: each is written to a temp file of its own next to the target
 * (created exclusively, mode 0600, never through a symlink), synced, and moved into
 * place only once whole. A target that exists (a symlink too) is refused unless
 * `force`, and then replaced, never written through: its mode, owner and links do not
 * carry over. A failed or interrupted export leaves no file, nor a temp one.
 */

/** Temp files being written by this process: a signal that ends it removes them first. */
const writing = new Set<string>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function onSignal(signal: NodeJS.Signals): void {
  for (const f of writing) rmSync(f, { force: true });
  writing.clear();
  for (const s of SIGNALS) process.off(s, onSignal);
  // As if nothing had listened: the process ends by the signal (exit 130 for Ctrl-C).
  process.kill(process.pid, signal);
}

function track(tmp: string): void {
  if (!writing.size) for (const s of SIGNALS) process.on(s, onSignal);
  writing.add(tmp);
}

function untrack(tmp: string): void {
  writing.delete(tmp);
  if (!writing.size) for (const s of SIGNALS) process.off(s, onSignal);
}

/** Refuses before anything is decrypted: a target (any kind of file, a symlink too) that exists, unless `force`. */
export async function refuseExisting(targets: string[], force: boolean): Promise<void> {
  if (force) return;
  for (const t of targets) {
    if (await lstat(t).then(() => true, () => false)) throw new Error(`${t} already exists: nothing was written (pass --force to replace it)`);
  }
}

/** A finished temp file, and where it goes. */
export interface PendingFile {
  tmp: string;
  out: string;
}

/** Writes `data` into a new temp file next to `out` (see above); on failure the temp file goes. */
export async function writeTemp(data: Readable | string, out: string): Promise<PendingFile> {
  const tmp = tempNameFor(out);
  track(tmp);
  try {
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      if (typeof data === 'string') await fh.writeFile(data);
      else for await (const chunk of data) await fh.write(chunk as Buffer);
      await fh.datasync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (typeof data !== 'string') data.destroy();
    await discard([{ tmp, out }]);
    throw err;
  }
  return { tmp, out };
}

/** Removes temp files of an export that will not be placed. */
export async function discard(files: PendingFile[]): Promise<void> {
  for (const f of files) {
    await rm(f.tmp, { force: true }).catch(() => undefined);
    untrack(f.tmp);
  }
}

/**
 * Moves finished temp files into place in the order given (the last one's appearance
 * says the export is complete). Without `force` a hard link makes the name appear only
 * if nothing took it meanwhile; with it a rename replaces what is there (a symlink
 * itself, not its target). If one cannot be placed, those placed before are removed.
 */
export async function place(files: PendingFile[], force: boolean): Promise<void> {
  const placed: string[] = [];
  try {
    for (const f of files) {
      if (force) await rename(f.tmp, f.out);
      else {
        try {
          await link(f.tmp, f.out);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${f.out} was created while the export was written: nothing was written (pass --force to replace it)`);
          throw err;
        }
      }
      placed.push(f.out);
      if (!force) await unlink(f.tmp);
      untrack(f.tmp);
      await syncDirectory(dirname(f.out));
    }
  } catch (err) {
    for (const out of placed) await rm(out, { force: true }).catch(() => undefined);
    await discard(files);
    throw err;
  }
}

/** One export stream written to `out` (see above); the stream is made once `out` is known to be free. */
export async function writeExport(stream: () => Readable, out: string, force: boolean): Promise<void> {
  await refuseExisting([out], force);
  await place([await writeTemp(stream(), out)], force);
}
