/**
 * Group commit for an append-only file: `flushOne` writes (and fsyncs) one batch of
 * what is pending. When idle the first append flushes at once; under load a flush starts
 * no sooner than `windowMs` after the previous one started, so everything arriving
 * meanwhile shares one write and one fsync. Fewer, larger batches cost less CPU per
 * record; the wait is bounded by the window. (The spool's commitWindow, for other files.)
 */
export class FlushWindow {
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastStart = -Infinity;

  constructor(
    private readonly windowMs: number,
    private readonly flushOne: () => Promise<void>,
    private readonly hasPending: () => boolean,
  ) {}

  /** Something was appended: see that it gets flushed. */
  kick(): void {
    if (this.flushing || this.timer) return;
    const wait = this.lastStart + this.windowMs - Date.now();
    if (wait <= 0) this.start();
    else this.timer = setTimeout(() => {
      this.timer = undefined;
      this.start();
    }, wait);
  }

  /** Resolves when nothing is pending or being written. */
  async drain(): Promise<void> {
    while (this.flushing || this.timer || this.hasPending()) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.start();
      } else if (!this.flushing) this.start();
      await this.flushing;
    }
  }

  private start(): void {
    this.lastStart = Date.now();
    this.flushing = this.flushOne().finally(() => {
      this.flushing = undefined;
      if (this.hasPending()) this.kick();
    });
  }
}
