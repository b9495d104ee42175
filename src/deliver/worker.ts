import type { PosternConfig, TlsLevel } from '../config/schema.js';
import type { Planner, SendGroup } from '../policy/planner.js';
import { removeSubjectTag } from '../protect/subject-tag.js';
import { mxMatchesPolicy, type MtaSts, type MtaStsLookup } from '../tls/mta-sts.js';
import type { PortalDelivery } from '../portal/deliver.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { domainOf } from '../ingress/authorize.js';
import type { QueueBackend } from '../queue/backend.js';
import type { DeliveryState, Envelope, QueuedMessage, RecipientState } from '../types.js';
import { classifyReply } from './classify.js';
import { enqueueDsn } from './bounce.js';
import type { FailedRecipient } from './dsn.js';
import { ConnectError, type ConnectionPool } from './pool.js';
import { isExpired, nextAttemptAt } from './retry.js';
import { RouteError, type Router, type Route } from './router.js';
import { sendTransaction } from './transaction.js';
import type { TlsInfo } from '../tls/verdict.js';

/** What one attempt decided for one recipient. */
export interface Outcome {
  rcpt: string;
  result: 'delivered' | 'defer' | 'bounce';
  status: string;
  response: string;
  category: string;
  diagnosticType: 'smtp' | 'x-postern';
  relay?: string | undefined;
  remoteMta?: string | undefined;
  tls?: (TlsInfo & { level: string; policy?: string | undefined }) | undefined;
  conn?: number | undefined;
  connectMs?: number | undefined;
  transmitMs?: number | undefined;
  route?: Route['source'] | undefined;
}

/** Addresses tried per attempt across all MX hosts, as Postfix's smtp_mx_address_limit. */
const MAX_ADDRESSES_PER_ATTEMPT = 5;

/**
 * Takes due messages from the durable queue, delivers each recipient domain over the
 * pool, and settles every recipient: delivered, deferred with backoff, or bounced with
 * an RFC 3464 report to the sender. The queue is the only place retries live.
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
    private readonly router: Router,
    private readonly pool: ConnectionPool,
    private readonly planner: Planner,
    logger: Logger,
    private readonly mtaSts?: MtaSts,
    private readonly portal?: PortalDelivery,
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

  private async process({ envelope, state }: QueuedMessage): Promise<void> {
    const now = Date.now();
    const due = state.recipients.filter((r) => r.status === 'pending' && r.nextAttemptAt <= now);
    const plan = await this.planner.plan(envelope, state, due);
    const held: Outcome[] = plan.held.map((h) => ({ rcpt: h.rcpt, result: h.result, status: h.status, response: h.reason, category: h.category, diagnosticType: 'x-postern' }));
    const sends = plan.groups.flatMap((group) => {
      const byDomain = new Map<string, string[]>();
      for (const rcpt of group.rcpts) {
        const d = domainOf(rcpt);
        byDomain.set(d, [...(byDomain.get(d) ?? []), rcpt]);
      }
      return [...byDomain].map(([domain, rcpts]) => this.deliverDomain(envelope, domain, rcpts, group));
    });
    let sent = (await Promise.all(sends)).flat();
    // TLS could not be had for a recipient whose decision allows the portal: it goes
    // there now, with the reason, instead of waiting (never in clear).
    const byRcpt = new Map(state.recipients.map((r) => [r.rcpt, r]));
    const fallback = sent.filter((o) => {
      const d = byRcpt.get(o.rcpt)?.decision;
      return o.result === 'defer' && o.category.startsWith('tls:') && d && (d.candidates.includes('portal') || d.onNoMethod === 'portal') && this.portal?.canServe(o.rcpt);
    });
    const toPortal = [...plan.portal.map((rcpt) => ({ rcpt, why: `policy ${byRcpt.get(rcpt)?.decision?.ruleId ?? ''} chose the portal` })), ...fallback.map((o) => ({ rcpt: o.rcpt, why: `TLS ${o.relay ? `to ${o.relay} ` : ''}failed (${o.category.slice(4)}): moved to the portal` }))];
    if (toPortal.length && this.portal) {
      for (const f of fallback) this.log.warn({ event: EVENTS.portalFallback, queueId: envelope.id, to: f.rcpt, relay: f.relay, reason: f.category, response: f.response }, 'TLS failed: recipient moved to the portal');
      sent = sent.filter((o) => !fallback.includes(o));
      const raw = await this.fullBody(envelope);
      const expiries = toPortal.map((p) => byRcpt.get(p.rcpt)?.decision?.portalExpiryMs).filter((x): x is number => x !== undefined);
      const portalOutcomes = await this.portal.deliver(envelope, state, raw, toPortal.map((p) => p.rcpt), toPortal.map((p) => p.why).join('; '), expiries.length ? Math.min(...expiries) : undefined);
      for (const p of portalOutcomes) {
        const r = byRcpt.get(p.rcpt);
        if (r?.decision && p.result === 'delivered') r.decision = { ...r.decision, method: 'portal' };
      }
      sent.push(...portalOutcomes.map((p): Outcome => ({ ...p, diagnosticType: 'x-postern', route: undefined })));
    }
    await this.settle(envelope, state, [...held, ...sent]);
  }

  private async fullBody(envelope: Envelope): Promise<Buffer> {
    const inMemory = this.queue.bodyInMemory?.(envelope.id);
    if (inMemory) return inMemory;
    const chunks: Buffer[] = [];
    for await (const c of await this.queue.openBody(envelope.id)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private async deliverDomain(envelope: Envelope, domain: string, rcpts: string[], group: SendGroup): Promise<Outcome[]> {
    let route: Route;
    try {
      route = await this.router.route(domain);
    } catch (err) {
      if (!(err instanceof RouteError)) throw err;
      return rcpts.map((rcpt) => ({ rcpt, result: err.permanent ? 'bounce' : 'defer', status: err.status, response: err.message, category: 'routing', diagnosticType: 'x-postern' }));
    }
    // The policy's TLS floor for these recipients raises the route's level, never lowers it.
    let level = strongerTls(route.tls, group.minTls);
    // MTA-STS applies to MX delivery (not to a configured smart host).
    const sts: MtaStsLookup | undefined = this.mtaSts && route.source !== 'transport' ? await this.mtaSts.policyFor(domain) : undefined;
    const stsMode = sts?.policy?.mode;
    const stsTag = stsMode === 'enforce' || stsMode === 'testing' ? `mta-sts-${stsMode}` : undefined;
    const held = (category: string, response: string): Outcome[] =>
      rcpts.map((rcpt) => ({ rcpt, result: 'defer', status: '4.7.5', response, category, diagnosticType: 'x-postern', route: route.source, tls: { verified: false, level, policy: stsTag } }));
    if (group.requireMtaSts && stsMode !== 'enforce') {
      const why = sts?.failure ? `${sts.failure}${sts.detail ? ` (${sts.detail})` : ''}` : 'no MTA-STS policy in enforce mode';
      return held(`tls:${sts?.failure ?? 'no-mta-sts-policy'}`, `policy requires MTA-STS for ${domain}: ${why}`);
    }
    let hops = route.hops;
    if (sts?.policy && stsMode !== 'none') {
      const allowed = hops.filter((h) => mxMatchesPolicy(h.name, sts.policy as { mx: string[] }));
      if (stsMode === 'enforce') {
        level = 'verify';
        if (!allowed.length) return held('tls:validation-failure', `no MX of ${domain} (${hops.map((h) => h.name).join(', ')}) is allowed by its MTA-STS policy (mx: ${sts.policy.mx.join(', ')}); nothing sent`);
        hops = allowed;
      } else if (allowed.length < hops.length) {
        this.log.warn({ event: EVENTS.mtaStsTesting, queueId: envelope.id, domain, mx: hops.filter((h) => !allowed.includes(h)).map((h) => h.name), policyMx: sts.policy.mx }, 'MTA-STS testing mode: MX not in policy (delivering anyway)');
      }
    }
    let last: Outcome[] = rcpts.map((rcpt) => ({ rcpt, result: 'defer', status: '4.4.1', response: `no address to try for ${domain}`, category: 'routing', diagnosticType: 'x-postern', route: route.source }));
    let tried = 0;
    for (const hop of hops) {
      for (const address of hop.addresses) {
        if (tried++ >= MAX_ADDRESSES_PER_ATTEMPT) return last;
        const relay = `${hop.name}[${address}]:${hop.port}`;
        const foreseen = this.pool.capabilities.foreseesFailure(hop.name, hop.port, level);
        if (foreseen && this.log.isLevelEnabled('info')) {
          // A forecast only: hosts fix their TLS, so the attempt is still made.
          this.log.info({ event: EVENTS.tlsForeseen, queueId: envelope.id, relay, level, lastSeen: foreseen }, 'TLS capability cache foresees a failure at this level');
        }
        let pc;
        try {
          pc = await this.pool.acquire({ address, port: hop.port, name: hop.name, tls: level });
        } catch (err) {
          if (!(err instanceof ConnectError)) throw err;
          const tlsProblem = Boolean(err.tlsFailure);
          last = rcpts.map((rcpt) => ({
            rcpt,
            result: 'defer',
            // 4.7.5 cryptographic failure, 4.4.1 no answer from host (RFC 3463).
            status: tlsProblem ? '4.7.5' : '4.4.1',
            response: err.response ? `${err.message}: ${err.response}` : err.message,
            category: tlsProblem ? `tls:${err.tlsFailure}` : 'connection',
            diagnosticType: 'x-postern',
            relay,
            remoteMta: hop.name,
            tls: err.tls ? { ...err.tls, level, policy: stsTag } : { verified: false, failure: err.tlsFailure, level, policy: stsTag },
            route: route.source,
          }));
          continue;
        }
        const stored = this.queue.bodyInMemory?.(envelope.id) ?? (await this.queue.openBody(envelope.id));
        const body = group.stripSubjectTag ? removeSubjectTag(stored, this.planner.subjectTag()) : stored;
        const result = await sendTransaction(pc, { from: envelope.mailFrom, to: rcpts, size: envelope.size, eightBit: envelope.bodyType === '8bitmime', body });
        this.pool.release(pc, result.reusable);
        const common = { relay, remoteMta: hop.name, tls: { ...pc.tls, level, policy: stsTag }, conn: pc.id, connectMs: pc.connectMs, transmitMs: result.transmitMs, route: route.source };
        last = result.replies.map((reply): Outcome => {
          if (reply.ok) return { rcpt: reply.rcpt, result: 'delivered', status: '2.0.0', response: reply.response, category: 'sent', diagnosticType: 'smtp', ...common };
          if (reply.local === 'network') return { rcpt: reply.rcpt, result: 'defer', status: '4.4.2', response: reply.response, category: 'connection', diagnosticType: 'x-postern', ...common };
          const c = classifyReply(reply.response);
          return { rcpt: reply.rcpt, result: c.action, status: c.status, response: c.response, category: c.category, diagnosticType: reply.local ? 'x-postern' : 'smtp', ...common };
        });
        // A connection lost mid-transaction is worth another address; any reply is final.
        if (!result.replies.every((r) => r.local === 'network')) return last;
      }
    }
    return last;
  }

  private async settle(envelope: Envelope, state: DeliveryState, outcomes: Outcome[]): Promise<void> {
    const recipients = state.recipients;
    const now = Date.now();
    const { retry } = this.config.delivery;
    const failed: FailedRecipient[] = [];
    const byRcpt = new Map(recipients.map((r) => [r.rcpt, r]));
    for (const o of outcomes) {
      const r = byRcpt.get(o.rcpt);
      if (!r) continue;
      r.attempts++;
      r.lastResponse = o.response;
      r.lastStatus = o.status;
      r.lastRelay = o.relay;
      r.updatedAt = now;
      let result = o.result;
      if (result === 'defer' && isExpired(retry, envelope.receivedAt, now)) {
        result = 'bounce';
        o.status = '5.4.7';
        o.response = `delivery time expired after ${r.attempts} attempts; last error: ${o.response}`;
        o.diagnosticType = 'x-postern';
      }
      if (result === 'delivered') r.status = 'delivered';
      else if (result === 'bounce') {
        r.status = 'bounced';
        r.lastStatus = o.status;
        failed.push({ rcpt: o.rcpt, status: o.status, diagnostic: o.response, diagnosticType: o.diagnosticType, remoteMta: o.remoteMta, lastAttemptAt: now });
      } else r.nextAttemptAt = nextAttemptAt(retry, r.attempts, envelope.receivedAt, now);
      this.logOutcome(envelope, r, o, result, now);
    }
    if (failed.length) {
      const queued = await enqueueDsn({ config: this.config, queue: this.queue, log: this.log, original: envelope, failed }).catch((err: Error) => {
        // The report must not be lost: keep those recipients pending so the next
        // attempt reports them again.
        this.log.error({ event: EVENTS.deliveryError, queueId: envelope.id, err: err.message }, 'could not queue the bounce report; will retry');
        for (const f of failed) {
          const r = byRcpt.get(f.rcpt);
          if (r) {
            r.status = 'pending';
            r.nextAttemptAt = now + retry.initialDelay;
          }
        }
        return undefined;
      });
      void queued;
    }
    if (recipients.every((r) => r.status !== 'pending')) {
      await this.queue.remove(envelope.id);
      this.log.debug({ event: EVENTS.queueRemoved, queueId: envelope.id }, 'all recipients final');
    } else {
      await this.queue.save(envelope.id, { recipients, inspection: state.inspection });
    }
  }

  private logOutcome(envelope: Envelope, r: RecipientState, o: Outcome, result: Outcome['result'], now: number): void {
    if (!this.log.isLevelEnabled(result === 'delivered' ? 'info' : 'warn')) return;
    const event = result === 'delivered' ? EVENTS.deliverySent : result === 'bounce' ? EVENTS.deliveryBounced : EVENTS.deliveryDeferred;
    const line = {
      event,
      queueId: envelope.id,
      to: r.rcpt,
      method: r.decision?.method,
      rule: r.decision?.ruleId,
      relay: o.relay,
      route: o.route,
      conn: o.conn,
      tls: o.tls && { level: o.tls.level, policy: o.tls.policy, version: o.tls.version, cipher: o.tls.cipher, verified: o.tls.verified, failure: o.tls.failure, detail: o.tls.detail },
      dsn: o.status,
      status: result === 'delivered' ? 'sent' : result === 'bounce' ? 'bounced' : 'deferred',
      category: o.category,
      attempt: r.attempts,
      response: o.response,
      delays: { queued: now - envelope.receivedAt, connect: o.connectMs, transmit: o.transmitMs },
      nextAttemptAt: result === 'defer' ? new Date(r.nextAttemptAt).toISOString() : undefined,
    };
    if (result === 'delivered') this.log.info(line, 'delivered');
    else this.log.warn(line, result === 'bounce' ? 'bounced' : 'deferred');
  }
}

const TLS_ORDER: TlsLevel[] = ['none', 'may', 'encrypt', 'verify'];

function strongerTls(a: TlsLevel, b: TlsLevel): TlsLevel {
  return TLS_ORDER.indexOf(a) >= TLS_ORDER.indexOf(b) ? a : b;
}
