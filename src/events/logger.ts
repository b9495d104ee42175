import { pino, type Logger, type DestinationStream } from 'pino';

/**
 * Stable event codes: ops teams alert and grep on these, so they never change meaning.
 * Every log line carries one as `event`.
 */
export const EVENTS = {
  start: 'gateway.start',
  ready: 'gateway.ready',
  stopping: 'gateway.stopping',
  stopped: 'gateway.stopped',
  workerExit: 'gateway.worker-exit',
  smtpListen: 'smtp.listen',
  smtpConnect: 'smtp.connect',
  smtpReject: 'smtp.reject',
  smtpAuth: 'smtp.auth',
  smtpClose: 'smtp.close',
  smtpError: 'smtp.error',
  queueAccepted: 'queue.accepted',
  queueFailed: 'queue.failed',
  queueRecovered: 'queue.recovered',
  queueRemoved: 'queue.removed',
  deliverySent: 'delivery.sent',
  deliveryDeferred: 'delivery.deferred',
  deliveryBounced: 'delivery.bounced',
  deliveryConnection: 'delivery.connection',
  deliveryError: 'delivery.error',
  dsnQueued: 'dsn.queued',
  dsnSuppressed: 'dsn.suppressed',
  configError: 'config.error',
  policyLoaded: 'policy.loaded',
  policyRejected: 'policy.rejected',
  inspected: 'inspect.done',
  decided: 'policy.decision',
  devCertificate: 'tls.dev-certificate',
  mtaStsTesting: 'tls.mta-sts-testing',
  tlsForeseen: 'tls.foreseen-failure',
  portalNotice: 'portal.notice',
  keySkipped: 'keys.skipped',
  dkimSigned: 'dkim.signed',
  portalFallback: 'portal.fallback',
  portalView: 'portal.view',
  portalDownload: 'portal.download',
  portalReply: 'portal.reply',
  portalLogin: 'portal.login',
  portalLoginFailed: 'portal.login-failed',
  portalLocked: 'portal.locked',
  portalRevoked: 'portal.revoked',
  portalExpired: 'portal.expired',
  portalListen: 'portal.listen',
  portalReset: 'portal.reset',
} as const;

export type EventCode = (typeof EVENTS)[keyof typeof EVENTS];

/** Keys that may carry secrets; pino replaces their values wherever they appear. */
const REDACT = ['password', '*.password', 'pass', '*.pass', 'passwordHash', '*.passwordHash', 'key', '*.key', 'authorization', '*.authorization'];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'postern' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    destination ?? pino.destination({ sync: false }),
  );
}

export type { Logger };
