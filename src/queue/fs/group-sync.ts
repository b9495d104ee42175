import { open, type FileHandle } from 'node:fs/promises';

/**
 * Group commit for directory fsyncs. Every caller of sync() is released by an fsync that
 * started after it called, but concurrent callers share one fsync: while one runs, the
 * next batch gathers and goes with a single call. Many transactions per disk flush
 * instead of one each, with no loss of durability. A failed fsync fails its callers and
 * the batch gathered behind it, and its descriptor is not used again.
 */
export class DirectorySyncer {
  private handle: Promise<FileHandle> | undefined;
  private running: Promise<void> | undefined;
  private waiting: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;
  /** fsync calls made, for tests and the benchmark. */
  syncs = 0;

  constructor(private readonly dir: string) {}

  sync(): Promise<void> {
    if (!this.running) return this.start();
    if (!this.waiting) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.waiting = { promise, resolve, reject };
    }
    return this.waiting.promise;
  }

  async close(): Promise<void> {
    await this.running?.catch(() => undefined);
    await this.waiting?.promise.catch(() => undefined);
    const h = await this.handle?.catch(() => undefined);
    this.handle = undefined;
    await h?.close();
  }

  private start(): Promise<void> {
    const run = this.fsyncOnce();
    this.running = run;
    let failure: { err: unknown } | undefined;
    void run
      .catch((err: unknown) => {
        failure = { err };
      })
      .finally(() => this.startWaiting(failure));
    return run;
  }

  /**
   * The batch that gathered during an fsync that failed is failed with it, not given a
   * fresh fsync: their renames may have been in the writeback that failed, and Linux
   * reports a writeback error once (to the first fsync that sees it), so a second
   * fsync could succeed although their entries never reached the disk.
   */
  private startWaiting(failure: { err: unknown } | undefined): void {
    this.running = undefined;
    const next = this.waiting;
    this.waiting = undefined;
    if (!next) return;
    if (failure) next.reject(failure.err);
    else this.start().then(next.resolve, next.reject);
  }

  private async fsyncOnce(): Promise<void> {
    this.handle ??= open(this.dir, 'r');
    let fh: FileHandle;
    try {
      fh = await this.handle;
    } catch (err) {
      this.handle = undefined; // try to open again next time (the directory may come back)
      throw err;
    }
    this.syncs++;
    try {
      await fh.sync();
    } catch (err) {
      // The error is spent on this descriptor: a later fsync on it may succeed without the
      // lost entries being on disk. Drop it; the next sync opens the directory afresh.
      this.handle = undefined;
      await fh.close().catch(() => undefined);
      throw err;
    }
  }
}
