import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { Held, Planner } from '../policy/planner.js';
import type { PortalDelivery } from '../portal/deliver.js';
import type { QueueBackend } from '../queue/backend.js';
import { ARCHIVE_EVENTS, JournalError, type Journal } from '../archive/index.js';
import type { DeliveryState, Envelope, QueuedMessage, RecipientState } from '../types.js';
import type { DomainSender } from './domain-sender.js';
import { harvestCertificates, type HarvestStep } from './harvest-step.js';
import { MemoryBudget } from './memory-budget.js';
import { localOutcomes, type Outcome } from './outcome.js';
import { portalStep } from './portal-step.js';
import type { Settler } from './settle.js';
import { UnsavedStates, unsavedRetry } from './unsaved.js';
import { VariantError, variantsOf, type VariantBuilder, type Variant } from './variant.js';

export type { Outcome } from './outcome.js';

/** Leasing from the queue failed (Redis down): wait this long, doubling up to the cap. */
const LEASE_BACKOFF_MIN_MS = 1_000;
const LEASE_BACKOFF_MAX_MS = 30_000;

/** The stages a delivery attempt goes through, built by main.ts. */
export interface DeliveryStages {
  planner: Planner;
  variants: VariantBuilder;
  sender: DomainSender;
  settler: Settler;
  portal?: PortalDelivery | undefined;
  /** keys.harvest: certificates of S/MIME-signed messages passing through. */
  harvest?: HarvestStep | undefined;
  /** The compliance archive: every message journaled before any delivery. */
  journal?: Journal | undefined;
}

/**
 * Takes due messages from the durable queue and runs each through the delivery stages:
 * plan, variants (encrypt, DKIM-sign), send per recipient domain, portal fallback, and
 * settle (delivered, deferred with backoff, or bounced with an RFC 3464 report). The
 * queue is the only place retries live.
 */
export class DeliveryWorker {
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;
  private pumpAgain = false;
  private stopped = false;
  private readonly active = new Set<Promise<void>>();
  /** Message id → the last attempt of it started here (see run()). */
  private readonly running = new Map<string, Promise<void>>();
  private readonly log: Logger;
  private readonly unsaved: UnsavedStates;
  /** delivery.wholeMessageMemory: what attempts may hold of whole messages at once. */
  private readonly wholeMessages: MemoryBudget;
  /** While leasing fails: the current wait, when the last try failed, and no lease before leaseRetryAt. */
  private leaseBackoffMs = 0;
  private leaseFailedAt = 0;
  private leaseRetryAt = 0;

  constructor(
    private readonly config: PosternConfig,
    private readonly queue: QueueBackend,
    private readonly stages: DeliveryStages,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'delivery' });
    this.wholeMessages = new MemoryBudget(config.delivery.wholeMessageMemory);
    this.unsaved = new UnsavedStates(unsavedRetry(config), (m) => stages.settler.persist(m), (m) => queue.release(m.envelope.id, m.lease), this.log);
  }

  start(): void {
    this.queue.onWake(() => this.schedule(true));
    this.schedule();
  }

  /** Stops leasing; waits for attempts in progress until the deadline. */
  async stop(deadline: number): Promise<boolean> {
    this.stopped = true;
    clearTimeout(this.timer);
    const all = Promise.all([...this.active]).then(async () => {
      await this.unsaved.stop();
      return true;
    });
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), Math.max(0, deadline - Date.now())).unref());
    return Promise.race([all, timeout]);
  }

  get busy(): number {
    return this.inFlight;
  }

  private schedule(wake = false): void {
    if (this.stopped) return;
    if (Date.now() < this.leaseRetryAt) {
      // Leasing failed: wait for the backoff timer. A queue wake-up follows a command that
      // worked (a commit, another instance's save), a sign the queue answers again, so it
      // ends the wait early — at most once a second, whatever the number of wake-ups.
      if (!wake || Date.now() - this.leaseFailedAt < LEASE_BACKOFF_MIN_MS) return;
      this.leaseRetryAt = 0;
    }
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump().finally(() => {
      this.pumping = false;
      if (this.pumpAgain) {
        this.pumpAgain = false;
        this.schedule();
      }
    });
  }

  private async pump(): Promise<void> {
    const limit = this.config.delivery.concurrency;
    try {
      while (!this.stopped && this.inFlight < limit) {
        const batch = await this.queue.lease(Date.now(), limit - this.inFlight);
        if (this.leaseBackoffMs) this.log.info({ event: EVENTS.deliveryRecovered }, 'queue lease works again');
        this.leaseBackoffMs = 0;
        if (!batch.length) break;
        for (const m of batch) this.run(m);
      }
    } catch (err) {
      // nextDueAt() may be stale (the Redis snapshot): without a wait this would lease again at once, without end.
      this.leaseBackoffMs = this.leaseBackoffMs ? Math.min(this.leaseBackoffMs * 2, LEASE_BACKOFF_MAX_MS) : LEASE_BACKOFF_MIN_MS;
      this.leaseFailedAt = Date.now();
      this.leaseRetryAt = this.leaseFailedAt + this.leaseBackoffMs;
      this.log.error({ event: EVENTS.deliveryError, err: (err as Error).message, retryInMs: this.leaseBackoffMs }, 'queue lease failed; trying again later');
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.leaseRetryAt = 0;
        this.schedule();
      }, this.leaseBackoffMs);
      return;
    }
    clearTimeout(this.timer);
    const next = this.queue.nextDueAt();
    if (next !== undefined && !this.stopped) {
      // Capped so a clock jump never leaves the queue asleep for long.
      this.timer = setTimeout(() => this.schedule(), Math.min(Math.max(0, next - Date.now()), 60_000));
    }
  }

  /**
   * Starts an attempt. The queue may hand out a message again while an attempt of it is
   * still running here: on Redis, when that attempt's lease ran out (the instance froze,
   * its heartbeats did not get through) and this instance took the message back. The new
   * attempt then waits for the old one to end instead of sending the same message at the
   * same time; the old one's write is refused (its lease is gone, see Settler.persist), and
   * the new one starts from the state the queue handed out with its lease (kept meanwhile
   * by the heartbeat).
   */
  private run(message: QueuedMessage): void {
    const id = message.envelope.id;
    this.inFlight++;
    const earlier = this.running.get(id);
    if (earlier) {
      this.log.warn({ event: EVENTS.leaseLost, queueId: id, queueIds: [id] }, 'the lease of an attempt still running here ran out and the message was handed out again: the new attempt waits for the old one, whose state will not be written');
    }
    const p = (earlier ? earlier.then(() => this.attempt(message)) : this.attempt(message))
      .catch((err: Error) => this.log.error({ event: EVENTS.deliveryError, queueId: id, err: err.message }, 'delivery attempt failed'))
      .finally(() => {
        this.inFlight--;
        this.active.delete(p);
        if (this.running.get(id) === p) this.running.delete(id);
        this.schedule();
      });
    this.active.add(p);
    this.running.set(id, p);
  }

  /**
   * One attempt, then its outcomes recorded and written. An attempt that crashes still
   * settles: what it obtained (delivered, bounced) stays so, the other due recipients are
   * deferred with the usual backoff — never handed out again at once, never sent twice.
   * A state that cannot be written stays leased (see UnsavedStates), for the same reason.
   */
  private async attempt(message: QueuedMessage): Promise<void> {
    const { envelope, state } = message;
    const now = Date.now();
    const due = state.recipients.filter((r) => r.status === 'pending' && r.nextAttemptAt <= now);
    const obtained: Outcome[] = [];
    let outcomes: Outcome[];
    try {
      outcomes = await this.process(message, due, obtained);
    } catch (err) {
      const reason = `delivery attempt failed: ${(err as Error).message}`;
      this.log.error({ event: EVENTS.deliveryError, queueId: envelope.id, err: (err as Error).message }, 'delivery attempt failed; what it obtained is kept, the rest is deferred');
      const final = obtained.filter((o) => o.result !== 'defer');
      const rest = due.filter((r) => !final.some((o) => o.rcpt === r.rcpt)).map((r) => r.rcpt);
      outcomes = [...final, ...localOutcomes(rest, { result: 'defer', status: '4.3.0', response: reason, category: 'internal' })];
    }
    try {
      await this.stages.settler.record(envelope, state, outcomes);
      await this.stages.settler.persist(message);
    } catch (err) {
      this.unsaved.hold(message, err as Error);
    }
  }

  /**
   * The attempt itself: plan (decide, find keys), make each variant (encrypt, sign) and
   * send it, move to the portal those whose TLS or encryption failed when their decision
   * allows it. Nothing goes out in clear that policy said must be protected: a variant
   * that cannot be made is never sent in another form. Each final outcome is also pushed
   * to `obtained` as soon as it is known, so a crash later keeps it.
   */
  private async process({ envelope, state }: QueuedMessage, due: RecipientState[], obtained: Outcome[]): Promise<Outcome[]> {
    const plan = await this.stages.planner.plan(envelope, state, due);
    const held: Outcome[] = plan.held.map((h) => ({ rcpt: h.rcpt, result: h.result, status: h.status, response: h.reason, category: h.category, diagnosticType: 'x-postern', rule: h.rule, method: h.method }));
    obtained.push(...held);
    const unarchived = await this.journal(envelope, state, plan.held);
    if (unarchived) {
      // Fail-closed: nothing is delivered that the archive does not hold; the next attempt
      // journals it first. Recipients already final (held as bounced) settle as they are.
      const waiting = due.filter((r) => !held.some((h) => h.rcpt === r.rcpt && h.result === 'bounce'));
      return [...held.filter((h) => h.result === 'bounce'), ...localOutcomes(waiting.map((r) => r.rcpt), { result: 'defer', status: '4.3.0', response: unarchived, category: 'journal' })];
    }
    const whole = this.wholeBodyOnce(envelope);
    try {
      if (this.stages.harvest) await harvestCertificates(this.stages.harvest, this.queue, envelope, state, whole.read, this.log);
      const sent = (await Promise.all(variantsOf(plan.groups).map((v) => this.sendVariant(envelope, v, whole.read, obtained)))).flat();
      const step = await portalStep({ portal: this.stages.portal, log: this.log }, envelope, state, sent, plan.portal, whole.read);
      obtained.push(...step.portal);
      return [...held, ...step.outcomes];
    } finally {
      whole.done();
    }
  }

  /**
   * The whole body, read at most once per attempt (its steps share it), after its size is
   * taken from delivery.wholeMessageMemory; `done` gives that back when the attempt ends.
   * A body the queue already holds in memory costs nothing more and takes nothing.
   */
  private wholeBodyOnce(envelope: Envelope): { read: () => Promise<Buffer>; done: () => void } {
    let body: Promise<Buffer> | undefined;
    let release: (() => void) | undefined;
    let ended = false;
    const take = async (): Promise<Buffer> => {
      const inMemory = this.queue.bodyInMemory?.(envelope.id);
      if (inMemory) return inMemory;
      const budget = this.wholeMessages;
      if (budget.mustWait(envelope.size)) {
        this.log.info({ event: EVENTS.deliveryMemoryWait, queueId: envelope.id, size: envelope.size, heldBytes: budget.heldBytes, limit: budget.limit, waiting: budget.waitingCount }, 'waiting for room to hold the message whole (delivery.wholeMessageMemory)');
      }
      release = await budget.take(envelope.size);
      // The attempt may have ended while this waited (nothing awaited the body any more).
      if (ended) release();
      return this.fullBody(envelope);
    };
    return {
      read: () => (body ??= take()),
      done: () => {
        ended = true;
        release?.();
      },
    };
  }

  /**
   * Journals the message once, before any delivery. Returns why it could not be, when
   * delivery must wait (archive.failOpen off); undefined when it may go on.
   */
  private async journal(envelope: Envelope, state: DeliveryState, held: Held[]): Promise<string | undefined> {
    const journal = this.stages.journal;
    if (!journal || state.journaled) return undefined;
    try {
      await journal.record({
        envelope,
        decisions: state.recipients.flatMap((r) => (r.decision ? [r.decision] : [])),
        body: this.queue.bodyInMemory?.(envelope.id) ?? (() => this.queue.openBody(envelope.id)),
        categories: state.inspection?.categories,
        held,
        storedIn: state.journaledSinks,
      });
      state.journaled = true;
      state.journaledSinks = undefined;
      return undefined;
    } catch (err) {
      // Saved with the attempt: the sinks that took it are not asked again, however long another is down.
      if (err instanceof JournalError && err.storedIn.length) state.journaledSinks = err.storedIn;
      const reason = `not archived yet (${(err as Error).message}); delivery waits for the archive`;
      if (!journal.failOpen) return reason;
      this.log.error({ event: ARCHIVE_EVENTS.failOpen, queueId: envelope.id, err: (err as Error).message }, 'journaling failed; delivering anyway (archive.failOpen)');
      return undefined;
    }
  }

  /**
   * Makes the variant's final message, then sends it; a failure to make it defers, with
   * the reason. Any other failure defers this variant alone: the others may have gone.
   */
  private async sendVariant(envelope: Envelope, v: Variant, raw: () => Promise<Buffer>, obtained: Outcome[]): Promise<Outcome[]> {
    let outgoing;
    try {
      outgoing = await this.stages.variants.build(envelope, v, raw);
    } catch (err) {
      if (!(err instanceof VariantError)) return this.variantCrashed(envelope, v, err as Error);
      const line = { event: err.stage === 'protect' ? EVENTS.protectFailed : EVENTS.dkimFailed, queueId: envelope.id, to: v.rcpts, method: v.method, keyId: v.key?.id, reason: err.message };
      this.log.error(line, err.stage === 'protect' ? 'encryption failed; nothing sent' : 'DKIM signing failed; nothing sent');
      return err.stage === 'protect'
        ? localOutcomes(v.rcpts, { result: 'defer', status: '4.7.5', response: `${err.message}; not sent in clear`, category: 'protect' })
        : localOutcomes(v.rcpts, { result: 'defer', status: '4.3.0', response: err.message, category: 'dkim' });
    }
    const outcomes = await this.stages.sender.send(envelope, outgoing).catch((err: Error) => this.variantCrashed(envelope, v, err));
    obtained.push(...outcomes);
    return outcomes;
  }

  private variantCrashed(envelope: Envelope, v: Variant, err: Error): Outcome[] {
    this.log.error({ event: EVENTS.deliveryError, queueId: envelope.id, to: v.rcpts, err: err.message }, 'sending a variant failed');
    return localOutcomes(v.rcpts, { result: 'defer', status: '4.3.0', response: `delivery attempt failed: ${err.message}`, category: 'internal' });
  }

  /**
   * Read into one buffer of the stored size, not gathered and concatenated: that held a
   * second copy of a large message until the next garbage collection.
   */
  private async fullBody(envelope: Envelope): Promise<Buffer> {
    const whole = Buffer.allocUnsafe(envelope.size);
    let filled = 0;
    const extra: Buffer[] = [];
    for await (const c of await this.queue.openBody(envelope.id)) {
      const chunk = c as Buffer;
      const fits = Math.min(chunk.length, whole.length - filled);
      chunk.copy(whole, filled, 0, fits);
      filled += fits;
      // More than the envelope said (it never should be): kept, not cut.
      if (fits < chunk.length) extra.push(chunk.subarray(fits));
    }
    const read = whole.subarray(0, filled);
    return extra.length ? Buffer.concat([read, ...extra]) : read;
  }
}
