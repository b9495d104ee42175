import { EVENTS, type Logger } from './logger.js';
import { webhookTallyOf } from './webhooks-tally.js';

/**
 * Most deliveries one webhook may have waiting in one process's file outbox, or in the
 * Redis outbox (all instances together). A receiver that is down, or that takes
 * connections and never answers (4 requests at a time, each lasting its timeout), would
 * otherwise let a backlog grow in memory and in the outbox files (or in Redis, until a
 * full Redis refuses writes, mail included) for as long as it stays so, and a restart
 * would load all of it back. Beyond the bound the oldest are given up. 100 000 is about
 * half an hour at 60 events a second, and about 40 MB of memory (~370 bytes a delivery:
 * id, position, heap entry, measured on Node 20); on Redis about 1.4 kB a delivery of a
 * typical `delivered` event (README, Webhooks).
 */
export const MAX_PENDING_PER_HOOK = 100_000;

/** The reason written in the outbox's gave-up line of a delivery dropped for the bound. */
export const backlogReason = (max: number) => `more than ${max} deliveries pending for this webhook: the oldest are given up`;

/**
 * Splits what an outbox holds into the newest `max` of each webhook (oldest first, the
 * order they are to be queued in) and the older rest, to be given up.
 */
export function trimBacklog<T extends { hook: string; at: number }>(pending: T[], max: number): { kept: T[]; over: T[] } {
  const byAge = [...pending].sort((a, b) => a.at - b.at);
  const excess = new Map<string, number>();
  for (const p of byAge) excess.set(p.hook, (excess.get(p.hook) ?? 0) + 1);
  for (const [hook, n] of excess) excess.set(hook, Math.max(0, n - max));
  const kept: T[] = [];
  const over: T[] = [];
  for (const p of byAge) {
    const n = excess.get(p.hook) as number;
    if (n > 0) excess.set(p.hook, n - 1);
    (n > 0 ? over : kept).push(p);
  }
  return { kept, over };
}

/** One line for many deliveries given up for the bound: under a flood, one per delivery would be a flood too. */
export function logBacklogGaveUp(log: Logger, host: string | undefined, count: number, max: number): void {
  webhookTallyOf(log).gaveUpDeliveries(host, count);
  log.error({ event: EVENTS.webhookGaveUp, host, count, maxPending: max, reason: backlogReason(max) }, `${count} webhook deliveries given up: backlog full`);
}

/** Adds up one webhook's deliveries given up for the bound and logs them at most once a second. */
export class BacklogReport {
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly host: string | undefined,
    private readonly max: number,
  ) {}

  add(count = 1): void {
    this.count += count;
    this.timer ??= setTimeout(() => this.flush(), 1000).unref();
  }

  /** Logs what is not logged yet (also on close, so no count is lost). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.count) logBacklogGaveUp(this.log, this.host, this.count, this.max);
    this.count = 0;
  }
}
