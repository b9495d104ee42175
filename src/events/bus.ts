/**
 * Every log line that carries an `event` code is also published here, whatever the
 * configured log level, so the audit trail, metrics and webhooks see the same events the
 * logs show without each call site knowing about them (DESIGN.md: "every step ──▶
 * events"). Subscribers get the fields object as logged: they must not change it, and
 * must not keep secrets (the logger's redaction applies to the printed line only).
 */
export interface BusEvent {
  event: string;
  /** pino's numeric level: 30 info, 40 warn, 50 error. */
  level: number;
  /** Epoch milliseconds. */
  time: number;
  fields: Readonly<Record<string, unknown>>;
}

export type BusListener = (e: BusEvent) => void;

/** A durable subscriber's wait: resolves once what it was handed so far is stored (may reject). */
export type DurabilityBarrier = () => Promise<void>;

export class EventBus {
  private readonly listeners = new Set<BusListener>();
  private readonly barriers = new Set<DurabilityBarrier>();

  /**
   * For subscribers that store what they are handed for later (the webhook outbox): a
   * caller about to make something final that must not outlive its events (a delivery's
   * state, src/deliver/settle.ts) can wait until they are stored (see durable()).
   */
  addBarrier(barrier: DurabilityBarrier): () => void {
    this.barriers.add(barrier);
    return () => this.barriers.delete(barrier);
  }

  /**
   * Resolves once every durable subscriber has stored what was published before the
   * call, or has failed to (it keeps the events in memory, retries and logs that), or
   * after `limitMs`: never rejects, so the caller is never stopped by a subscriber.
   */
  async durable(limitMs: number): Promise<void> {
    if (!this.barriers.size) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, limitMs);
      timer.unref();
    });
    const stored = Promise.all([...this.barriers].map((b) => b().catch(() => undefined)));
    await Promise.race([stored, late]).finally(() => clearTimeout(timer));
  }

  subscribe(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get active(): boolean {
    return this.listeners.size > 0;
  }

  publish(e: BusEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // A subscriber's failure must never break the code that logged the event; each
        // subscriber reports its own failures (its metric, its log line).
      }
    }
  }
}
