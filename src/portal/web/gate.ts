import { Refusal } from './refusal.js';

/** Thrown when a gated task could not start soon enough: 503 "busy, try again". */
export class BusyError extends Refusal {
  constructor() {
    super(503, 'Busy, try again', 'Many people are logging in right now. Wait a few seconds and try again.', 5);
  }
}

/**
 * At most `limit` tasks at once; the others wait up to `maxWaitMs` (at most
 * `maxWaiting` of them), then fail with BusyError. Waiting costs only a callback, while
 * a running task may cost much more (scrypt: ~128 MB each).
 */
export class Gate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly limit: number,
    private readonly maxWaitMs: number,
    private readonly maxWaiting: number,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.enter();
    try {
      return await task();
    } finally {
      this.leave();
    }
  }

  private enter(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.maxWaiting) return Promise.reject(new BusyError());
    return new Promise((resolve, reject) => {
      const start = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(start), 1);
        reject(new BusyError());
      }, this.maxWaitMs);
      this.waiting.push(start);
    });
  }

  /** A waiting task takes over the slot; only with none waiting does it free up. */
  private leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}
