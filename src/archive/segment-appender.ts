import { mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { removeStaleTemps, syncDirectory } from '../common/durable-file.js';
import { FlushWindow } from '../common/flush-window.js';
import type { ArchiveLayout } from './layout.js';
import { readSegmentPointer, writeSegmentPointer } from './segment-pointer.js';

/** Under load, a batch of entries is written at most this often (group commit). */
const FLUSH_WINDOW_MS = 10;

/** A segment is closed at this size or at the end of the (UTC) day, whichever first. */
const MAX_SEGMENT_BYTES = 64 * 1024 * 1024;

interface Pending {
  /** One entry, in the pieces it was made in (written back to back). */
  pieces: Buffer[];
  length: number;
  resolve: (loc: { file: string; offset: number }) => void;
  reject: (e: unknown) => void;
}

/**
 * Appends small entries to the current segment file of one chain: whatever arrives while
 * a write is in progress goes in the next single write + fdatasync (group commit, as
 * the spool's segment logs). A process starts a new segment each time it opens, so a
 * crash never leaves bytes to trim in a segment another record points into. Which
 * segment it writes is recorded first (segment-pointer.ts).
 */
export class SegmentAppender {
  private pending: Pending[] = [];
  private readonly window = new FlushWindow(FLUSH_WINDOW_MS, () => this.flushBatch(), () => this.pending.length > 0);
  private current: { fh: FileHandle; file: string; day: string; size: number } | undefined;

  private constructor(
    private readonly layout: ArchiveLayout,
    private readonly chain: string,
    private next: number,
  ) {}

  /**
   * Numbers go on from the last segment the chain started (its pointer), else from the
   * highest number on disk, in any day folder: after the clock stepped back, the newest
   * folder is not the one with the newest segment.
   */
  static async open(layout: ArchiveLayout, chain: string): Promise<SegmentAppender> {
    // Pointer writes a crash cut short (their temp files; the chain's lock is ours, but other chains' are not: only old ones go).
    await removeStaleTemps(layout.chainsDir).catch(() => undefined);
    const last = (await readSegmentPointer(layout, chain)) ?? (await latestSegment(layout, chain));
    return new SegmentAppender(layout, chain, (last?.n ?? -1) + 1);
  }

  append(pieces: Buffer[]): Promise<{ file: string; offset: number }> {
    const length = pieces.reduce((n, p) => n + p.length, 0);
    return new Promise((resolve, reject) => {
      this.pending.push({ pieces, length, resolve, reject });
      this.window.kick();
    });
  }

  async close(): Promise<void> {
    await this.window.drain();
    await this.current?.fh.close();
    this.current = undefined;
  }

  private async flushBatch(): Promise<void> {
    const batch = this.pending.splice(0);
    let seg;
    try {
      seg = await this.segment();
      const start = seg.size;
      await seg.fh.writev(batch.flatMap((p) => p.pieces));
      await seg.fh.datasync();
      let offset = start;
      for (const p of batch) {
        p.resolve({ file: seg.file, offset });
        offset += p.length;
      }
      seg.size = offset;
    } catch (err) {
      // Unrecorded bytes at the end of a segment are never read; start afresh next time.
      await this.current?.fh.close().catch(() => undefined);
      this.current = undefined;
      const e = new Error(`archive segment: ${(err as Error).message}`);
      for (const p of batch) p.reject(e);
    }
  }

  private async segment() {
    const now = Date.now();
    const day = new Date(now).toISOString().slice(0, 10);
    if (this.current && this.current.day === day && this.current.size < MAX_SEGMENT_BYTES) return this.current;
    await this.current?.fh.close();
    this.current = undefined;
    for (let tries = 1; ; tries++) {
      const file = this.layout.segmentFile(this.chain, this.next++, now);
      // Named before it exists: nothing is ever appended to a segment the pointer does not name.
      await writeSegmentPointer(this.layout, this.chain, file);
      const path = this.layout.resolve(file);
      const created = await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      let fh: FileHandle;
      try {
        fh = await open(path, 'wx', 0o600);
      } catch (err) {
        // A number already taken in this folder (a pointer restored from a backup): the next one.
        if ((err as NodeJS.ErrnoException).code === 'EEXIST' && tries < MAX_TAKEN_NUMBERS) continue;
        throw err;
      }
      // The new file's name, and any new day folders, must survive a crash too.
      for (let d = dirname(path); ; d = dirname(d)) {
        await syncDirectory(d);
        if (!created || d === dirname(created) || d.length <= this.layout.root.length) break;
      }
      this.current = { fh, file, day, size: 0 };
      return this.current;
    }
  }
}

/** How many taken segment numbers a new segment skips before the write fails. */
const MAX_TAKEN_NUMBERS = 1000;

const numbered = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).filter((n) => /^\d+$/.test(n)).sort().reverse();

/**
 * The chain's highest-numbered segment in any day folder (the newest folder first among
 * equal numbers). Every folder is read: the folder a segment is in is the date of the
 * clock when it was started, and a clock that was ahead for a while leaves older
 * segments in newer folders.
 */
export async function latestSegment(layout: ArchiveLayout, chain: string): Promise<{ n: number; path: string } | undefined> {
  let best: { n: number; path: string } | undefined;
  for (const y of await numbered(layout.itemsDir)) {
    for (const m of await numbered(join(layout.itemsDir, y))) {
      for (const d of await numbered(join(layout.itemsDir, y, m))) {
        const dir = join(layout.itemsDir, y, m, d);
        for (const name of await readdir(dir).catch(() => [] as string[])) {
          const n = layout.segmentNumber(chain, name);
          if (n !== undefined && (!best || n > best.n)) best = { n, path: join(dir, name) };
        }
      }
    }
  }
  return best;
}
