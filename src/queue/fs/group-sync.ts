import { open, type FileHandle } from 'node:fs/promises';

/**
 * Group commit for directory fsyncs. Every caller of sync() is released by an fsync that
 * started after it called, but concurrent callers share one fsync: while one runs, the
 * next batch gathers and goes with a single call. Many transactions per disk flush
 * instead of one each, with no loss of durability.
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
    void run
      .catch(() => undefined)
      .finally(() => {
        this.running = undefined;
        const next = this.waiting;
        this.waiting = undefined;
        if (next) this.start().then(next.resolve, next.reject);
      });
    return run;
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
    await fh.sync();
  }
}
