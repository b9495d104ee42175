import type { PosternConfig } from '../config/schema.js';
import { eventsDurable } from '../events/durable.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { QueueBackend } from '../queue/backend.js';
import type { DeliveryState, Envelope, QueuedMessage, RecipientState } from '../types.js';
import { enqueueDsn } from './bounce.js';
import type { FailedRecipient } from './dsn.js';
import { tlsPolicyLabel } from './domain-sender.js';
import type { Outcome } from './outcome.js';
import { isExpired, nextAttemptAt } from './retry.js';

/**
 * Records what one attempt did to each recipient — delivered, deferred with backoff, or
 * bounced with an RFC 3464 report to the sender — logs it, and removes the message once
 * every recipient is final. The queue is the only place retries live.
 */
export class Settler {
  constructor(
    private readonly config: PosternConfig,
    private readonly queue: QueueBackend,
    private readonly log: Logger,
  ) {}

  /**
   * Applies an attempt's outcomes to the state in memory (attempts, status, next attempt),
   * logs them and queues the bounce report. Writes nothing else: see persist().
   */
  async record(envelope: Envelope, state: DeliveryState, outcomes: Outcome[]): Promise<void> {
    const recipients = state.recipients;
    const now = Date.now();
    const { retry } = this.config.delivery;
    const failed: FailedRecipient[] = [];
    // One jitter for the whole attempt: recipients deferred together (same attempt count)
    // come due together and go in one transaction. A draw per recipient spread them over
    // up to 10% of the delay, so one message went out again in many transactions, each
    // with the whole body, and an expiry bounced them in as many reports.
    const jitter = Math.random();
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
      } else r.nextAttemptAt = nextAttemptAt(retry, r.attempts, envelope.receivedAt, now, () => jitter);
      this.logOutcome(envelope, r, o, result, now);
    }
    if (failed.length) {
      await enqueueDsn({ config: this.config, queue: this.queue, log: this.log, original: envelope, state, failed }).catch((err: Error) => {
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
      });
    }
  }

  /**
   * Writes the recorded state (and releases the lease), or removes a message that is done,
   * under the lease the attempt was made with: once that lease has run out and the message
   * was taken again, the queue refuses the write (LeaseLostError) rather than let this
   * attempt's state replace the newer one.
   */
  async persist({ envelope, state, lease }: QueuedMessage): Promise<void> {
    // The attempt's webhook events first: once the state is written the attempt is never
    // made again, so a crash after it must not be able to lose them.
    await eventsDurable(this.log);
    if (state.recipients.every((r) => r.status !== 'pending')) {
      await this.queue.remove(envelope.id, lease);
      this.log.debug({ event: EVENTS.queueRemoved, queueId: envelope.id }, 'all recipients final');
    } else {
      // The whole state: decisions, inspection, the portal copy and the journal flag live on.
      await this.queue.save(envelope.id, { ...state, recipients: state.recipients }, lease);
    }
  }

  private logOutcome(envelope: Envelope, r: RecipientState, o: Outcome, result: Outcome['result'], now: number): void {
    if (!this.log.isLevelEnabled(result === 'delivered' ? 'info' : 'warn')) return;
    const event = result === 'delivered' ? EVENTS.deliverySent : result === 'bounce' ? EVENTS.deliveryBounced : EVENTS.deliveryDeferred;
    const key = r.decision?.key;
    const line = {
      event,
      queueId: envelope.id,
      to: r.rcpt,
      method: r.decision?.method ?? o.method,
      rule: r.decision?.ruleId ?? o.rule,
      // Not named "key": pino redacts fields of that name.
      keyId: key && r.decision?.method === key.kind ? key.id : undefined,
      keySource: key && r.decision?.method === key.kind ? key.source : undefined,
      relay: o.relay,
      route: o.route,
      conn: o.conn,
      tls: o.tls && { level: o.tls.level, policy: tlsPolicyLabel(o.tls.policy, r.decision?.ruleId), version: o.tls.version, cipher: o.tls.cipher, verified: o.tls.verified, failure: o.tls.failure, detail: o.tls.detail, stsFailure: o.tls.stsFailure },
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
