import { pino, type Logger, type DestinationStream } from 'pino';
import { EventBus } from './bus.js';

/**
 * Stable event codes: ops teams alert and grep on these, so they never change meaning.
 * Every log line carries one as `event`.
 */
export const EVENTS = {
  start: 'gateway.start',
  ready: 'gateway.ready',
  stopping: 'gateway.stopping',
  stopped: 'gateway.stopped',
  /** A graceful stop could not close everything (records the disk refused); the process exits 1. */
  stopFailed: 'gateway.stop-failed',
  /** (primary) A worker still running past shutdown.timeout and its grace was killed. */
  workerKilled: 'gateway.worker-killed',
  /** A SIGTERM/SIGINT while the stop is under way: ignored (shutdown.timeout bounds the stop). */
  alreadyStopping: 'gateway.already-stopping',
  /** SIGHUP: ignored (nothing reloads on it; the policy file reloads by itself). */
  sighupIgnored: 'gateway.sighup-ignored',
  workerExit: 'gateway.worker-exit',
  /** An exception or rejection nothing handled: a bug; the process exits and is started again. */
  crash: 'gateway.crash',
  smtpListen: 'smtp.listen',
  smtpConnect: 'smtp.connect',
  smtpReject: 'smtp.reject',
  smtpAuth: 'smtp.auth',
  smtpAuthLocked: 'smtp.auth-locked',
  smtpClose: 'smtp.close',
  /** The client closed the connection before the end of DATA: nothing stored, nothing answered. */
  smtpDataIncomplete: 'smtp.data-incomplete',
  smtpError: 'smtp.error',
  queueAccepted: 'queue.accepted',
  queueFailed: 'queue.failed',
  queueRecovered: 'queue.recovered',
  /** A message's lease ran out while an attempt still held it (Redis queue): another attempt may take it; the old one's state is not written. */
  leaseLost: 'queue.lease-lost',
  queueRemoved: 'queue.removed',
  deliverySent: 'delivery.sent',
  deliveryDeferred: 'delivery.deferred',
  deliveryBounced: 'delivery.bounced',
  /** A host did not settle recipients (no connection, a TLS failure, a 4xx, a connection lost): the next MX address of the same attempt gets them. */
  deliveryNextAddress: 'delivery.next-address',
  /** An attempt that must read its message whole waits for room in delivery.wholeMessageMemory. */
  deliveryMemoryWait: 'delivery.memory-wait',
  /** Whether a transaction went out with the SMTPUTF8 parameter (RFC 6531), without it, or not at all (deliver/smtputf8.ts). */
  deliverySmtpUtf8: 'delivery.smtputf8',
  deliveryConnection: 'delivery.connection',
  deliveryError: 'delivery.error',
  /** What a delivery.error held up works again: an attempt's state was written, leasing from the queue works. */
  deliveryRecovered: 'delivery.recovered',
  dsnQueued: 'dsn.queued',
  dsnSuppressed: 'dsn.suppressed',
  configError: 'config.error',
  policyLoaded: 'policy.loaded',
  policyRejected: 'policy.rejected',
  inspected: 'inspect.done',
  decided: 'policy.decision',
  devCertificate: 'tls.dev-certificate',
  /** The portal runs on a development master key (no portal.masterKeys). */
  portalDevKey: 'portal.dev-key',
  mtaStsTesting: 'tls.mta-sts-testing',
  /** MTA-STS discovery or policy fetch failed (RFC 8460 result type; the cached policy may still apply). */
  mtaStsFailure: 'tls.mta-sts-failure',
  /** An MTA-STS policy could not be saved (or an expired one removed): it applies from memory, but a restart or another instance will not have it. */
  mtaStsStoreFailed: 'tls.mta-sts-store-failed',
  tlsForeseen: 'tls.foreseen-failure',
  /** A portal notice sent at its own decision's TLS level, below the route's (deliver/tls-level.ts). */
  tlsNoticeLevel: 'tls.notice-level',
  portalNotice: 'portal.notice',
  keySkipped: 'keys.skipped',
  keyFound: 'keys.found',
  keySourceFailed: 'keys.source-failed',
  keyHarvested: 'keys.harvested',
  /** A keys.smimeTrust / keys.smimeIntermediates certificate that cannot be read was left out (start-up). */
  keyTrustSkipped: 'keys.trust-skipped',
  /** A keys.smimeCrls file changed but could not be used; the CRLs read before stay in force. */
  keyCrlFailed: 'keys.crl-failed',
  /** An identity or escrow key/certificate expires within 30 days, or has expired (at start, then daily). */
  keyExpiring: 'keys.expiring',
  protectEncrypted: 'protect.encrypted',
  protectFailed: 'protect.failed',
  dkimSigned: 'dkim.signed',
  dkimFailed: 'dkim.failed',
  /** (debug) A message went out unsigned: no dkim.keys entry for its sender domain or a parent. */
  dkimUnsigned: 'dkim.unsigned',
  portalFallback: 'portal.fallback',
  portalView: 'portal.view',
  portalDownload: 'portal.download',
  portalReply: 'portal.reply',
  portalLogin: 'portal.login',
  portalLoginFailed: 'portal.login-failed',
  portalLocked: 'portal.locked',
  portalRevoked: 'portal.revoked',
  /** A portal request failed on the portal's side; the visitor got a 500 page without the cause. */
  portalError: 'portal.error',
  /** postern portal rotate-key re-wrapped the stored messages' keys with a new master key. */
  portalKeyRotated: 'portal.key-rotated',
  portalExpired: 'portal.expired',
  portalListen: 'portal.listen',
  portalReset: 'portal.reset',
  healthReady: 'health.ready',
  healthNotReady: 'health.not-ready',
  adminListen: 'admin.listen',
  /** The admin listener is on a non-loopback address without TLS (admin.cleartext: warn). */
  adminCleartext: 'admin.cleartext',
  /** (cluster primary) A worker that is running did not answer an admin question within the IPC deadline (stopped, hung, overloaded). */
  adminWorkerTimeout: 'admin.worker-timeout',
  apiCall: 'api.call',
  queueRetried: 'queue.retried',
  queueDeleted: 'queue.deleted',
  keysImported: 'keys.imported',
  keysRemoved: 'keys.removed',
  /** A legal hold was placed on archived items (its admin chain record is durable): id, criteria, reason, actor. */
  archiveHoldAdded: 'archive.hold-added',
  /** A legal hold was released: its items follow their retention again. */
  archiveHoldReleased: 'archive.hold-released',
  auditFailed: 'audit.failed',
  /** The audit trail was written again after failed writes. */
  auditRecovered: 'audit.recovered',
  /** Written into the audit trail itself: records it could not keep (its writes failed for too long). */
  auditGap: 'audit.gap',
  /** Written into the audit trail itself: at start-up its end did not match its head (records removed). */
  auditTruncated: 'audit.truncated',
  webhookDelivered: 'webhook.delivered',
  webhookFailed: 'webhook.failed',
  webhookGaveUp: 'webhook.gave-up',
  /** Webhook events taken and then lost: not written to the Redis outbox at stop, nor kept on disk either. */
  webhookLost: 'webhook.lost',
} as const;

export type EventCode = (typeof EVENTS)[keyof typeof EVENTS];

/** Keys that may carry secrets; pino replaces their values wherever they appear. */
const REDACT = ['password', '*.password', 'pass', '*.pass', 'passwordHash', '*.passwordHash', 'key', '*.key', 'authorization', '*.authorization'];

const BUS = Symbol('postern.events');

/** The lowest level whose events reach the bus: info and above are the operational ones. */
const BUS_LEVEL = 30;

/**
 * The logger, and the event bus behind it (see bus.ts). The logger itself runs at info or
 * below so events reach the bus; lines under the configured level are published but
 * never serialised or written.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const bus = new EventBus();
  const outputLevel = pino.levels.values[level] ?? Infinity; // 'silent' prints nothing
  const logger = pino(
    {
      level: outputLevel <= BUS_LEVEL ? level : 'info',
      base: { service: 'postern' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
      hooks: {
        logMethod(args, method, lvl) {
          const first = args[0] as unknown;
          if (lvl >= BUS_LEVEL && bus.active && first && typeof first === 'object' && typeof (first as { event?: unknown }).event === 'string') {
            bus.publish({ event: (first as { event: string }).event, level: lvl, time: Date.now(), fields: first as Record<string, unknown> });
          }
          if (lvl >= outputLevel) method.apply(this, args as Parameters<typeof method>);
        },
      },
    },
    destination ?? pino.destination({ sync: false }),
  );
  // pino's child loggers inherit from their parent's object, so they find the bus too.
  (logger as unknown as Record<symbol, EventBus>)[BUS] = bus;
  return logger;
}

/** The bus of a logger made by createLogger (or of any child of one). */
export function eventBusOf(logger: Logger): EventBus {
  const bus = (logger as unknown as Record<symbol, EventBus | undefined>)[BUS];
  if (!bus) throw new Error('logger was not made by createLogger: it has no event bus');
  return bus;
}

export type { Logger };
