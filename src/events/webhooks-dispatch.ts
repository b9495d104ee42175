import { DueHeap } from '../queue/fs/due-heap.js';
import type { Logger } from './logger.js';
import { attemptDelivery, logGaveUp, pastGiveUpReason } from './webhooks-attempt.js';
import { BacklogReport, backlogReason, MAX_PENDING_PER_HOOK } from './webhooks-backlog.js';
import { IN_FLIGHT_PER_HOOK, type Hook } from './webhooks-hooks.js';
import type { Outbox, PendingDelivery } from './webhooks-outbox.js';

interface Waiting {
  p: PendingDelivery;
  attempts: number;
  dueAt: number;
  /** An attempt is under way: it is not in the heap, and its end settles or reschedules it. */
  sending: boolean;
  /** Dropped for the backlog bound while sending: given up when the attempt ends, unless it delivered. */
  dropped: boolean;
}

interface HookQueue {
  heap: DueHeap;
  /** In the order they were queued: the first is the oldest, the one the bound gives up first. */
  items: Map<string, Waiting>;
  inFlight: number;
  backlog: BacklogReport;
}

/**
 * Sends what the outbox holds: each delivery when due, a few at a time per webhook,
 * retried with exponential backoff until a 2xx (recorded in the outbox, so a restart
 * does not send it again) or until it is too old (given up, logged). Each failed attempt
 * is recorded too (Outbox.reschedule), so a delivery loaded at a restart carries on its
 * backoff where it was: its attempt count, and not before its next attempt was due. Only
 * ids and positions are kept in memory; bodies are read back from the outbox for each attempt.
 * At most `maxPending` deliveries wait per webhook; beyond that the oldest are given up.
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
    private readonly maxPending = MAX_PENDING_PER_HOOK,
  ) {}

  enqueue(p: PendingDelivery): void {
    const hook = this.hooks.get(p.hook);
    if (!hook) return this.giveUp(undefined, p, 0, 'the webhook is no longer configured');
    let q = this.queues.get(hook.id);
    if (!q) this.queues.set(hook.id, (q = { heap: new DueHeap(), items: new Map(), inFlight: 0, backlog: new BacklogReport(this.log, hook.host, this.maxPending) }));
    const now = Date.now();
    // As recorded, but no later than the webhook's retry settings allow now (they may have
    // been made shorter since): within maxDelay, and by giveUpAfter at the latest.
    const dueAt = Math.max(now, Math.min(p.dueAt, now + hook.retry.maxDelay, p.at + hook.retry.giveUpAfter));
    const w = { p, attempts: p.attempts, dueAt, sending: false, dropped: false };
    q.items.set(p.id, w);
    q.heap.push(w.dueAt, p.id);
    if (q.items.size > this.maxPending) this.dropOldest(q);
    this.pump();
  }

  /** Stops sending; waits for requests in flight (each bounded by its timeout). What is left stays in the outbox. */
  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all([...this.active]);
    for (const q of this.queues.values()) q.backlog.flush();
  }

  private pump(): void {
    if (this.stopped) return;
    const now = Date.now();
    let next: number | undefined;
    for (const [id, q] of this.queues) {
      const hook = this.hooks.get(id) as Hook;
      for (;;) {
        const top = q.heap.peek();
        if (!top) break;
        const w = q.items.get(top.id);
        if (!w || w.sending || w.dueAt !== top.dueAt) {
          q.heap.pop(); // stale: settled, dropped, or due again later
          continue;
        }
        if (top.dueAt > now) {
          next = Math.min(next ?? Infinity, top.dueAt);
          break;
        }
        // Too old by its turn (its attempts were held up behind a slow receiver): giving
        // it up needs no request slot, so it goes even while every slot is taken.
        if (now - w.p.at > hook.retry.giveUpAfter) {
          q.heap.pop();
          q.items.delete(top.id);
          this.giveUp(hook, w.p, w.attempts, pastGiveUpReason(hook));
          continue;
        }
        if (q.inFlight >= IN_FLIGHT_PER_HOOK) break;
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
    w.sending = true;
    const run = this.send(hook, q, w).finally(() => {
      w.sending = false;
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
    if (outcome.t === 'done') {
      q.items.delete(w.p.id);
      return this.outbox.settle(w.p, { t: 'done', id: w.p.id, status: outcome.status, at: Date.now() });
    }
    if (w.dropped) return this.settleDropped(q, w);
    if (outcome.t === 'retry') {
      w.dueAt = outcome.dueAt;
      q.heap.push(w.dueAt, w.p.id);
      return this.outbox.reschedule(w.p, w.attempts, w.dueAt);
    }
    q.items.delete(w.p.id);
    this.giveUp(hook, w.p, w.attempts, outcome.reason);
  }

  /**
   * Keeps a webhook's waiting deliveries within the bound by giving up the oldest (one
   * in flight is marked, and given up when its attempt ends). Their heap entries go
   * stale; the heap is rebuilt once stale ones outnumber live ones, so it stays bounded too.
   */
  private dropOldest(q: HookQueue): void {
    for (const [id, w] of q.items) {
      if (q.items.size <= this.maxPending) break;
      q.items.delete(id);
      if (w.sending) w.dropped = true;
      else this.settleDropped(q, w);
    }
    if (q.heap.size > 2 * q.items.size + 1024) {
      q.heap = new DueHeap();
      for (const [id, w] of q.items) if (!w.sending) q.heap.push(w.dueAt, id);
    }
  }

  private settleDropped(q: HookQueue, w: Waiting): void {
    this.outbox.settle(w.p, { t: 'gave-up', id: w.p.id, reason: backlogReason(this.maxPending), at: Date.now() });
    q.backlog.add();
  }

  private giveUp(hook: Hook | undefined, p: PendingDelivery, attempts: number, reason: string): void {
    this.outbox.settle(p, { t: 'gave-up', id: p.id, reason, at: Date.now() });
    logGaveUp(this.log, hook, p, attempts, reason);
  }
}
