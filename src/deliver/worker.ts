import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { Planner } from '../policy/planner.js';
import type { PortalDelivery } from '../portal/deliver.js';
import type { QueueBackend } from '../queue/backend.js';
import { ARCHIVE_EVENTS, type Journal } from '../archive/index.js';
import type { DeliveryState, Envelope, QueuedMessage } from '../types.js';
import type { DomainSender } from './domain-sender.js';
import { harvestCertificates, type HarvestStep } from './harvest-step.js';
import { localOutcomes, type Outcome } from './outcome.js';
import type { Settler } from './settle.js';
import { VariantError, variantsOf, type VariantBuilder, type Variant } from './variant.js';

export type { Outcome } from './outcome.js';

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
  private readonly log: Logger;

  constructor(
    private readonly config: PosternConfig,
    private readonly queue: QueueBackend,
    private readonly stages: DeliveryStages,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'delivery' });
  }

  start(): void {
    this.queue.onWake(() => this.schedule());
    this.schedule();
  }

  /** Stops leasing; waits for attempts in progress until the deadline. */
  async stop(deadline: number): Promise<boolean> {
    this.stopped = true;
    clearTimeout(this.timer);
    const all = Promise.all([...this.active]).then(() => true);
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), Math.max(0, deadline - Date.now())).unref());
    return Promise.race([all, timeout]);
  }

  get busy(): number {
    return this.inFlight;
  }

  private schedule(): void {
    if (this.stopped) return;
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
        if (!batch.length) break;
        for (const m of batch) this.run(m);
      }
    } catch (err) {
      this.log.error({ event: EVENTS.deliveryError, err: (err as Error).message }, 'queue lease failed');
    }
    clearTimeout(this.timer);
    const next = this.queue.nextDueAt();
    if (next !== undefined && !this.stopped) {
      // Capped so a clock jump never leaves the queue asleep for long.
      this.timer = setTimeout(() => this.schedule(), Math.min(Math.max(0, next - Date.now()), 60_000));
    }
  }

  private run(message: QueuedMessage): void {
    this.inFlight++;
    const p = this.process(message)
      .catch(async (err) => {
        this.log.error({ event: EVENTS.deliveryError, queueId: message.envelope.id, err: (err as Error).message }, 'delivery attempt failed; message released');
        await this.queue.release(message.envelope.id).catch(() => undefined);
      })
      .finally(() => {
        this.inFlight--;
        this.active.delete(p);
        this.schedule();
      });
    this.active.add(p);
  }

  /**
   * One attempt: plan (decide, find keys), make each variant (encrypt, sign) and send it,
   * move to the portal those whose TLS or encryption failed when their decision allows
   * it, then settle every recipient. Nothing goes out in clear that policy said must be
   * protected: a variant that cannot be made is never sent in another form.
   */
  private async process({ envelope, state }: QueuedMessage): Promise<void> {
    const { planner, settler, portal } = this.stages;
    const now = Date.now();
    const due = state.recipients.filter((r) => r.status === 'pending' && r.nextAttemptAt <= now);
    const plan = await planner.plan(envelope, state, due);
    const held: Outcome[] = plan.held.map((h) => ({ rcpt: h.rcpt, result: h.result, status: h.status, response: h.reason, category: h.category, diagnosticType: 'x-postern' }));
    const unarchived = await this.journal(envelope, state);
    if (unarchived) {
      // Fail-closed: nothing is delivered that the archive does not hold; the next attempt
      // journals it first. Recipients already final (held as bounced) settle as they are.
      const waiting = due.filter((r) => !held.some((h) => h.rcpt === r.rcpt && h.result === 'bounce'));
      await settler.settle(envelope, state, [...held.filter((h) => h.result === 'bounce'), ...localOutcomes(waiting.map((r) => r.rcpt), { result: 'defer', status: '4.3.0', response: unarchived, category: 'journal' })]);
      return;
    }
    let original: Promise<Buffer> | undefined;
    const raw = () => (original ??= this.fullBody(envelope));
    if (this.stages.harvest) await harvestCertificates(this.stages.harvest, this.queue, envelope, state, raw, this.log);
    let sent = (await Promise.all(variantsOf(plan.groups).map((v) => this.sendVariant(envelope, v, raw)))).flat();
    const byRcpt = new Map(state.recipients.map((r) => [r.rcpt, r]));
    const fallback = sent.filter((o) => {
      const d = byRcpt.get(o.rcpt)?.decision;
      const moveable = o.category.startsWith('tls:') || o.category === 'protect';
      return o.result === 'defer' && moveable && d && (d.candidates.includes('portal') || d.onNoMethod === 'portal') && portal?.canServe(o.rcpt);
    });
    const toPortal = [
      ...plan.portal.map((rcpt) => ({ rcpt, why: `policy ${byRcpt.get(rcpt)?.decision?.ruleId ?? ''} chose the portal` })),
      ...fallback.map((o) => ({ rcpt: o.rcpt, why: o.category === 'protect' ? `${o.response}: moved to the portal` : `TLS ${o.relay ? `to ${o.relay} ` : ''}failed (${o.category.slice(4)}): moved to the portal` })),
    ];
    if (toPortal.length && portal) {
      for (const f of fallback) this.log.warn({ event: EVENTS.portalFallback, queueId: envelope.id, to: f.rcpt, relay: f.relay, reason: f.category, response: f.response }, f.category === 'protect' ? 'encryption failed: recipient moved to the portal' : 'TLS failed: recipient moved to the portal');
      sent = sent.filter((o) => !fallback.includes(o));
      const expiries = toPortal.map((p) => byRcpt.get(p.rcpt)?.decision?.portalExpiryMs).filter((x): x is number => x !== undefined);
      const portalOutcomes = await portal.deliver(envelope, state, await raw(), toPortal.map((p) => p.rcpt), toPortal.map((p) => p.why).join('; '), expiries.length ? Math.min(...expiries) : undefined);
      for (const p of portalOutcomes) {
        const r = byRcpt.get(p.rcpt);
        if (r?.decision && p.result === 'delivered') r.decision = { ...r.decision, method: 'portal' };
      }
      sent.push(...portalOutcomes.map((p): Outcome => ({ ...p, diagnosticType: 'x-postern', route: undefined })));
    }
    await settler.settle(envelope, state, [...held, ...sent]);
  }

  /**
   * Journals the message once, before any delivery. Returns why it could not be, when
   * delivery must wait (archive.failOpen off); undefined when it may go on.
   */
  private async journal(envelope: Envelope, state: DeliveryState): Promise<string | undefined> {
    const journal = this.stages.journal;
    if (!journal || state.journaled) return undefined;
    try {
      await journal.record({
        envelope,
        decisions: state.recipients.flatMap((r) => (r.decision ? [r.decision] : [])),
        body: this.queue.bodyInMemory?.(envelope.id) ?? (() => this.queue.openBody(envelope.id)),
        categories: state.inspection?.categories,
      });
      state.journaled = true;
      return undefined;
    } catch (err) {
      const reason = `not archived yet (${(err as Error).message}); delivery waits for the archive`;
      if (!journal.failOpen) return reason;
      this.log.error({ event: ARCHIVE_EVENTS.failOpen, queueId: envelope.id, err: (err as Error).message }, 'journaling failed; delivering anyway (archive.failOpen)');
      return undefined;
    }
  }

  /** Makes the variant's final message, then sends it; a failure to make it defers, with the reason. */
  private async sendVariant(envelope: Envelope, v: Variant, raw: () => Promise<Buffer>): Promise<Outcome[]> {
    let outgoing;
    try {
      outgoing = await this.stages.variants.build(envelope, v, raw);
    } catch (err) {
      if (!(err instanceof VariantError)) throw err;
      const line = { event: err.stage === 'protect' ? EVENTS.protectFailed : EVENTS.dkimFailed, queueId: envelope.id, to: v.rcpts, method: v.method, keyId: v.key?.id, reason: err.message };
      this.log.error(line, err.stage === 'protect' ? 'encryption failed; nothing sent' : 'DKIM signing failed; nothing sent');
      return err.stage === 'protect'
        ? localOutcomes(v.rcpts, { result: 'defer', status: '4.7.5', response: `${err.message}; not sent in clear`, category: 'protect' })
        : localOutcomes(v.rcpts, { result: 'defer', status: '4.3.0', response: err.message, category: 'dkim' });
    }
    return this.stages.sender.send(envelope, outgoing);
  }

  private async fullBody(envelope: Envelope): Promise<Buffer> {
    const inMemory = this.queue.bodyInMemory?.(envelope.id);
    if (inMemory) return inMemory;
    const chunks: Buffer[] = [];
    for await (const c of await this.queue.openBody(envelope.id)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
}
