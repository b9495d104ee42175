/** The life of one message as `postern trace` (and the admin API) report it. Plain JSON. */

/** An audit record as it appears in a trace. */
export interface TraceEvent {
  time: string;
  event: string;
  /** The chain (worker shard) that recorded it. */
  shard: string;
  fields: Record<string, unknown>;
}

export interface TraceTls {
  level?: string;
  policy?: string;
  version?: string;
  cipher?: string;
  verified?: boolean;
  failure?: string;
  detail?: string;
}

/** One delivery attempt of one recipient (a delivery.sent / deferred / bounced record). */
export interface TraceAttempt {
  time: string;
  status: 'sent' | 'deferred' | 'bounced';
  attempt?: number | undefined;
  method?: string | undefined;
  relay?: string | undefined;
  route?: string | undefined;
  tls?: TraceTls | undefined;
  dsn?: string | undefined;
  category?: string | undefined;
  response?: string | undefined;
  /** Milliseconds: since receipt, connecting, transmitting. */
  delays?: { queued?: number; connect?: number; transmit?: number } | undefined;
  nextAttemptAt?: string | undefined;
}

export interface TraceDecision {
  time: string;
  rule?: string | undefined;
  method?: string | undefined;
  candidates?: string[] | undefined;
  tls?: string | undefined;
  onNoMethod?: string | undefined;
  reasons?: string[] | undefined;
}

/** Where a recipient stands after the last recorded event. */
export type TraceFinal = 'delivered' | 'portal' | 'bounced' | 'deferred' | 'undecided';

export interface TraceRecipient {
  address: string;
  decision?: TraceDecision | undefined;
  attempts: TraceAttempt[];
  /** Portal notice, fallback, views, downloads, replies, login failures and locks of this recipient. */
  portal: TraceEvent[];
  final: TraceFinal;
}

export interface TraceReport {
  queueId: string;
  messageId?: string | undefined;
  from?: string | undefined;
  received?: {
    time: string;
    ip?: string | undefined;
    sessionId?: string | undefined;
    /** The name the client gave in HELO/EHLO. */
    helo?: string | undefined;
    /** Inbound TLS protocol and cipher suite; absent in clear. */
    tls?: string | undefined;
    cipher?: string | undefined;
    authUser?: string | undefined;
    size?: number | undefined;
    recipients?: number | undefined;
  };
  inspection?: {
    time: string;
    parts?: number | undefined;
    attachments?: number | undefined;
    detectors: { detector: string; count: number }[];
    score?: number | undefined;
    subjectTagged?: boolean | undefined;
    error?: string | undefined;
  };
  /** archive.* records: journaled, failed, fail-open. */
  journal: TraceEvent[];
  /** protect.* and dkim.* records: how each variant was made. */
  variants: TraceEvent[];
  recipients: TraceRecipient[];
  /** Portal events of the message as a whole (revoked, expired). */
  portal: TraceEvent[];
  /** Messages this one caused: bounce reports, portal notices, replies written in the portal. */
  related: { kind: 'bounce-report' | 'portal-notice' | 'portal-reply'; queueId: string; to?: string | undefined }[];
  /** Records not shown above: key lookups, TLS warnings, bounce reports, operators' retries and deletions, admin API calls. */
  other: TraceEvent[];
  /** Every record, in time order. */
  events: TraceEvent[];
}
