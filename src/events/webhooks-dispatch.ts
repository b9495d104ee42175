import { DueHeap } from '../queue/fs/due-heap.js';
import type { Logger } from './logger.js';
import { attemptDelivery, logGaveUp } from './webhooks-attempt.js';
import { IN_FLIGHT_PER_HOOK, type Hook } from './webhooks-hooks.js';
import type { Outbox, PendingDelivery } from './webhooks-outbox.js';

interface Waiting {
  p: PendingDelivery;
  attempts: number;
  dueAt: number;
}

interface HookQueue {
  heap: DueHeap;
  items: Map<string, Waiting>;
  inFlight: number;
}

/**
 * Sends what the outbox holds: each delivery when due, a few at a time per webhook,
 * retried with exponential backoff until a 2xx (recorded in the outbox, so a restart
 * does not send it again) or until it is too old (given up, logged). Only ids and
 * positions are kept in memory; bodies are read back from the outbox for each attempt.
 */
export class Dispatcher {
  private readonly queues = new Map<string, HookQueue>();
  private readonly active = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly hooks: Map<string, Hook>,
    private readonly outbox: Outbox,
    private readonly log: Logger,
  ) {}

  enqueue(p: PendingDelivery): void {
    const hook = this.hooks.get(p.hook);
    if (!hook) return this.giveUp(undefined, p, 0, 'the webhook is no longer configured');
    let q = this.queues.get(hook.id);
    if (!q) this.queues.set(hook.id, (q = { heap: new DueHeap(), items: new Map(), inFlight: 0 }));
    const w = { p, attempts: 0, dueAt: Date.now() };
    q.items.set(p.id, w);
    q.heap.push(w.dueAt, p.id);
    this.pump();
  }

  /** Stops sending; waits for requests in flight (each bounded by its timeout). What is left stays in the outbox. */
  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all([...this.active]);
  }

  private pump(): void {
    if (this.stopped) return;
    const now = Date.now();
    let next: number | undefined;
    for (const [id, q] of this.queues) {
      const hook = this.hooks.get(id) as Hook;
      while (q.inFlight < IN_FLIGHT_PER_HOOK) {
        const top = q.heap.peek();
        if (!top) break;
        const w = q.items.get(top.id);
        if (!w || w.dueAt !== top.dueAt) {
          q.heap.pop(); // stale: settled, or due again later
          continue;
        }
        if (top.dueAt > now) {
          next = Math.min(next ?? Infinity, top.dueAt);
          break;
        }
        q.heap.pop();
        this.attempt(hook, q, w);
      }
    }
    clearTimeout(this.timer);
    if (next !== undefined) this.timer = setTimeout(() => this.pump(), next - now).unref();
  }

  private attempt(hook: Hook, q: HookQueue, w: Waiting): void {
    q.inFlight++;
    w.attempts++;
    const run = this.send(hook, q, w).finally(() => {
      q.inFlight--;
      this.active.delete(run);
      this.pump();
    });
    this.active.add(run);
  }

  private async send(hook: Hook, q: HookQueue, w: Waiting): Promise<void> {
    let outcome;
    try {
      outcome = await attemptDelivery(hook, await this.outbox.read(w.p), w.attempts, this.log);
    } catch (err) {
      q.items.delete(w.p.id);
      return this.giveUp(hook, w.p, w.attempts, (err as Error).message);
    }
    if (outcome.t === 'retry') {
      w.dueAt = outcome.dueAt;
      q.heap.push(w.dueAt, w.p.id);
      return;
    }
    q.items.delete(w.p.id);
    if (outcome.t === 'give-up') return this.giveUp(hook, w.p, w.attempts, outcome.reason);
    this.outbox.settle(w.p, { t: 'done', id: w.p.id, status: outcome.status, at: Date.now() });
  }

  private giveUp(hook: Hook | undefined, p: PendingDelivery, attempts: number, reason: string): void {
    this.outbox.settle(p, { t: 'gave-up', id: p.id, reason, at: Date.now() });
    logGaveUp(this.log, hook, p, attempts, reason);
  }
}
