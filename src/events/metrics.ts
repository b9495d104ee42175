import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ARCHIVE_EVENTS } from '../archive/events.js';
import type { QueueStats } from '../queue/backend.js';
import type { BusEvent, EventBus } from './bus.js';
import { EVENTS } from './logger.js';
import { webhookTallyOf, type WebhookTally } from './webhooks-tally.js';

/** What the gauges read at scrape time (so they are never stale and cost nothing between scrapes). */
export interface MetricSources {
  queue?: (() => QueueStats | Promise<QueueStats>) | undefined;
  /**
   * Every process reads the same whole queue (queue.backend: redis), so a cluster's
   * primary must not add the workers' readings up: it takes the largest instead.
   */
  sharedQueue?: boolean | undefined;
  /** Ingress's own counts: connections taken and turned away at connect. */
  connections?: (() => { accepted: number; rejected: number }) | undefined;
  ready?: (() => boolean) | undefined;
  /** The audit trail's failed writes (since start) and records waiting in memory. */
  audit?: (() => { failures: number; pending: number }) | undefined;
}

/** Seconds from arrival to delivery: from a prompt relay through retries up to the 5-day lifetime. */
const DELAY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86_400, 5 * 86_400];

/** The queue gauges of one scrape are collected together: they share one reading (one Redis call). */
function oneReadAtATime<T>(read: () => T | Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => (pending ??= Promise.resolve().then(read).finally(() => (pending = undefined)));
}

const str = (v: unknown, fallback: string) => (typeof v === 'string' && v ? v : typeof v === 'number' ? String(v) : fallback);

/**
 * The gateway's Prometheus metrics, in a registry of its own (several gateways can run in
 * one test process). Counters follow the event bus, so they count exactly what the logs
 * show; gauges are read from their sources when scraped. In a worker process the primary
 * sums the workers' registries (src/api/cluster-ops.ts): each metric says how.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly unsubscribe: () => void;

  private readonly c = {
    rejections: this.counter('postern_smtp_rejections_total', 'SMTP commands and messages Postern refused, by stage (connect, mail, rcpt, data) and reply code', ['stage', 'code']),
    accepted: this.counter('postern_messages_accepted_total', 'Messages accepted (250 after the spool write)', []),
    rejected: this.counter('postern_messages_rejected_total', 'Messages refused at the end of DATA, by reply code', ['code']),
    recipients: this.counter('postern_recipients_total', 'Recipient delivery attempts by protection method and outcome (sent, deferred, bounced)', ['method', 'outcome']),
    tls: this.counter('postern_tls_outcomes_total', 'Outbound TLS per recipient attempt that reached a server, by RFC 8460 result type (success, or cleartext when none was used) and level', ['result', 'level']),
    portalLogins: this.counter('postern_portal_logins_total', 'Successful portal logins', []),
    portalFailures: this.counter('postern_portal_login_failures_total', 'Failed portal logins', []),
    portalLocks: this.counter('postern_portal_locks_total', 'Portal accounts locked after repeated failures', []),
    journalFailures: this.counter('postern_journal_failures_total', 'Journal sink failures, by sink', ['sink']),
    archiveAlerts: this.counter('postern_archive_alerts_total', 'Archive events an operator must look at, by event code (archive.fail-open: a message delivered without its journal copy; archive.purge-refused: the admin chain did not verify, nothing was purged; archive.chain-unlisted: a journal chain could not be listed in the admin chain)', ['event']),
    adminAuthFailures: this.counter('postern_admin_auth_failures_total', 'Admin API calls (and /metrics scrapes with admin.metricsAuth) refused for their credentials: invalid (401, wrong credentials given) or rate-limited (429, too many failures from the address)', ['result']),
  };

  private readonly delay = new Histogram({
    name: 'postern_delivery_delay_seconds',
    help: 'Time from arrival to a recipient being delivered',
    buckets: DELAY_BUCKETS,
    registers: [this.registry],
  });

  constructor(bus: EventBus, sources: MetricSources = {}, options: { processMetrics?: boolean } = {}) {
    this.sourceMetrics(sources);
    this.webhookMetrics(webhookTallyOf(bus));
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.unsubscribe = bus.subscribe((e) => this.onEvent(e));
  }

  close(): void {
    this.unsubscribe();
  }

  private onEvent({ event, fields: f }: BusEvent): void {
    switch (event) {
      case EVENTS.queueAccepted:
        return this.c.accepted.inc();
      case EVENTS.smtpReject:
      case EVENTS.queueFailed: {
        // A storage failure is logged as queue.failed; the client was told 451.
        const code = str(f.code, '451');
        this.c.rejections.inc({ stage: str(f.stage, 'data'), code });
        if (event === EVENTS.queueFailed || f.stage === 'data') this.c.rejected.inc({ code });
        return;
      }
      case EVENTS.deliverySent:
      case EVENTS.deliveryDeferred:
      case EVENTS.deliveryBounced:
        return this.onDelivery(f);
      case EVENTS.portalLogin:
        return this.c.portalLogins.inc();
      case EVENTS.portalLoginFailed:
        return this.c.portalFailures.inc();
      case EVENTS.portalLocked:
        return this.c.portalLocks.inc();
      case ARCHIVE_EVENTS.failOpen:
      case ARCHIVE_EVENTS.purgeRefused:
      case ARCHIVE_EVENTS.chainUnlisted:
        return this.c.archiveAlerts.inc({ event });
      case ARCHIVE_EVENTS.journalFailed:
        return this.c.journalFailures.inc({ sink: str(f.sink, 'unknown') });
      case EVENTS.apiCall:
        if (f.authFailure === 'invalid' || f.authFailure === 'rate-limited') this.c.adminAuthFailures.inc({ result: f.authFailure });
        return;
    }
  }

  /** One delivery line: one recipient's attempt (src/deliver/settle.ts). */
  private onDelivery(f: Readonly<Record<string, unknown>>): void {
    const outcome = str(f.status, 'unknown');
    this.c.recipients.inc({ method: str(f.method, 'none'), outcome });
    const tls = f.tls as { level?: unknown; version?: unknown; failure?: unknown } | undefined;
    // An attempt that never reached a server (refused, timed out connecting) used no TLS
    // and no cleartext either: counted as cleartext, it looked like a downgrade.
    const reachedServer = Boolean(tls?.failure || tls?.version) || f.category !== 'connection';
    if (tls && reachedServer) this.c.tls.inc({ result: str(tls.failure, tls.version ? 'success' : 'cleartext'), level: str(tls.level, 'unknown') });
    const queued = (f.delays as { queued?: unknown } | undefined)?.queued;
    if (outcome === 'sent' && typeof queued === 'number') this.delay.observe(queued / 1000);
  }

  /**
   * Read from the webhook senders' tally at scrape time, not counted off the bus: a
   * give-up decided as the outbox is loaded comes before the metrics subscribe, and a
   * webhook.failed line is also logged for outbox and Redis trouble, which are no attempts.
   */
  private webhookMetrics(tally: WebhookTally): void {
    const registers = [this.registry];
    new Counter({
      name: 'postern_webhook_failures_total',
      help: 'Failed webhook delivery attempts, one per attempt without a 2xx answer (the last one, given up, included), by webhook (receiver host) and reason (http-<status>, timeout, or an error code such as ECONNREFUSED)',
      labelNames: ['webhook', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const { webhook, reason, count } of tally.failedAttempts.values()) this.inc({ webhook, reason }, count);
      },
    });
    new Counter({
      name: 'postern_webhook_given_up_total',
      help: 'Webhook deliveries given up (webhook.gave-up: failing or still waiting past retry.giveUpAfter, webhook no longer configured, backlog full), by webhook (receiver host; unconfigured when no longer configured), those decided at start-up included',
      labelNames: ['webhook'],
      registers,
      collect() {
        this.reset();
        for (const [webhook, count] of tally.gaveUp) this.inc({ webhook }, count);
      },
    });
  }

  private sourceMetrics(s: MetricSources): void {
    const registers = [this.registry];
    if (s.connections) {
      const read = s.connections;
      new Counter({
        name: 'postern_smtp_connections_total',
        help: 'SMTP connections, accepted or rejected at connect',
        labelNames: ['result'],
        registers,
        collect() {
          const now = read();
          this.reset();
          this.inc({ result: 'accepted' }, now.accepted);
          this.inc({ result: 'rejected' }, now.rejected);
        },
      });
    }
    if (s.queue) {
      const stats = oneReadAtATime(s.queue);
      const across = s.sharedQueue ? 'max' : 'sum';
      const gauge = (name: string, help: string, value: (q: QueueStats) => number, aggregator: 'sum' | 'max' = across) =>
        new Gauge({ name, help, registers, aggregator, async collect() { this.set(value(await stats())); } });
      gauge('postern_queue_messages', 'Messages in the queue', (q) => q.depth);
      gauge('postern_queue_leased_messages', 'Messages being delivered right now', (q) => q.leased);
      gauge('postern_queue_oldest_message_age_seconds', 'Age of the oldest queued message (0 when empty)', (q) => (q.oldestReceivedAt === undefined ? 0 : Math.max(0, (Date.now() - q.oldestReceivedAt) / 1000)), 'max');
    }
    if (s.audit) {
      const read = s.audit;
      new Counter({ name: 'postern_audit_failures_total', help: 'Failed writes of the audit trail (each is retried; its records wait in memory)', registers, collect() { this.reset(); this.inc(read().failures); } });
      new Gauge({ name: 'postern_audit_pending_records', help: 'Audit records held in memory, not yet on disk', registers, aggregator: 'sum', collect() { this.set(read().pending); } });
    }
    if (s.ready) {
      const ready = s.ready;
      new Gauge({ name: 'postern_ready', help: '1 when ready to accept mail (every worker, in a cluster), else 0', registers, aggregator: 'min', collect() { this.set(ready() ? 1 : 0); } });
    }
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
}
