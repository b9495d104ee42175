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

export class EventBus {
  private readonly listeners = new Set<BusListener>();

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
