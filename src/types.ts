/**
 * Central types that travel through the pipeline (see DESIGN.md). They are plain JSON so
 * any queue backend can persist them; none of them ever holds a message body.
 */

/** Who handed us the message, as seen by ingress. */
export interface ClientInfo {
  ip: string;
  helo: string;
  /** TLS protocol and cipher of the inbound session, absent for plaintext. */
  tls?: { protocol: string; cipher: string } | undefined;
  /** SMTP AUTH user name when the client authenticated. */
  authUser?: string | undefined;
  /** smtp-server session id, ties log lines of one connection together. */
  sessionId: string;
}

export interface Envelope {
  id: string;
  /** Epoch milliseconds. */
  receivedAt: number;
  /** Envelope sender; '' is the null sender (bounces). */
  mailFrom: string;
  rcptTo: string[];
  client: ClientInfo;
  /** '8bitmime' when the client declared BODY=8BITMIME. */
  bodyType: '7bit' | '8bitmime';
  /**
   * What the stored body holds, as the queue saw it arrive: '8bit' when any byte is above
   * 0x7F. Many clients declare BODY=8BITMIME for every message; one that is 7-bit all
   * through goes on without it, to a next hop without 8BITMIME too. Set by the queue at
   * commit; absent on messages spooled before Postern recorded it, which go as declared.
   * Both values are four characters long: the fs spool writes it into a large message's
   * envelope line before the body has all arrived, and corrects it in place (spool-writer.ts).
   */
  bodyBits?: '7bit' | '8bit' | undefined;
  /** The client used SMTPUTF8 (internationalised addresses). */
  smtpUtf8: boolean;
  /**
   * The sender domains the session was bound to: its smtp.clients entry's senderDomains
   * and its AUTH user's, one list each (patterns in the comparable form). A domain is
   * within them when every list has a pattern for it. DKIM signs only for such a domain,
   * so a client bound to one tenant's domains never gets another's signature. Absent when
   * the session was not bound, and on messages spooled before Postern recorded it (those
   * are signed as before).
   */
  senderDomains?: string[][] | undefined;
  /** Size in bytes of the stored body (our added headers included). */
  size: number;
  /**
   * Set on messages Postern generated itself: bounce reports (never bounced again),
   * portal notices, and replies written in the portal.
   */
  origin?: 'dsn' | 'dsn-protected' | 'portal-notice' | 'portal-reply' | 'portal-receipt' | undefined;
}

export type RecipientStatus = 'pending' | 'delivered' | 'bounced';

/** Delivery progress of one recipient; lives beside the immutable envelope. */
export interface RecipientState {
  rcpt: string;
  status: RecipientStatus;
  attempts: number;
  /** Epoch ms of the next attempt while pending. */
  nextAttemptAt: number;
  lastResponse?: string | undefined;
  /** RFC 3463 status of the last outcome, e.g. 4.4.1 or 5.1.1. */
  lastStatus?: string | undefined;
  /** Host that gave the last response. */
  lastRelay?: string | undefined;
  updatedAt?: number | undefined;
  /** How policy decided this recipient gets the message (kept across attempts). */
  decision?: Decision | undefined;
}

/** What inspection found, kept with the message (names and counts, never matches). */
export interface InspectionSummary {
  score: number;
  categories: string[];
  hits: DetectorHit[];
  subjectTagged: boolean;
  error?: string | undefined;
  /** See MessageFacts.timedOut. */
  timedOut?: boolean | undefined;
  unscanned?: string | undefined;
}

export interface DeliveryState {
  recipients: RecipientState[];
  inspection?: InspectionSummary | undefined;
  /** The portal copy of this message, once stored (later attempts reuse it). */
  portalMessageId?: string | undefined;
  /** The archive holds this message (journaled once, before any delivery). */
  journaled?: boolean | undefined;
  /**
   * Until then: the archive sinks that already hold it (another sink failed), skipped on
   * the next attempt so none stores it twice (src/archive/journal.ts).
   */
  journaledSinks?: string[] | undefined;
}

/** One queued message as the worker sees it. */
export interface QueuedMessage {
  envelope: Envelope;
  state: DeliveryState;
  /**
   * The lease this copy was handed out with (lease(), claim()): an opaque fencing token.
   * The attempt made with it settles with it (save, release, remove), so that once the
   * lease has run out and the message was taken again, its write is refused instead of
   * riding on the newer lease. Absent on copies read without a lease (get, list).
   */
  lease?: string | undefined;
}

/** How a recipient can receive a message, in the order a policy prefers them. */
export type ProtectionMethod = 'smime' | 'pgp' | 'tls' | 'portal' | 'sms-portal';

/** The outbound TLS a decision demands when the method is `tls`. */
export type RequiredTls = 'may' | 'encrypt' | 'verify' | 'mta-sts';

/** One detector's findings in a message: never the matched text itself. */
export interface DetectorHit {
  /** Detector name, e.g. "ssn", "card", "npi", "custom:project-x". */
  detector: string;
  /** Category used by policy and archive, e.g. "phi", "pci", "custom". */
  category: string;
  count: number;
  /** count × the detector's weight. */
  score: number;
}

export interface AttachmentFact {
  filename?: string | undefined;
  contentType: string;
  size: number;
}

/** What inspection learned about a message, once. Policy reads facts, never raw bytes. */
export interface MessageFacts {
  subject: string;
  from: string;
  messageId?: string | undefined;
  /** Lower-cased header name → values, as received (bounded). */
  headers: Record<string, string[]>;
  attachments: AttachmentFact[];
  size: number;
  parts: number;
  detectors: { hits: DetectorHit[]; score: number; categories: string[] };
  /** Set when the message could not be inspected within the limits. */
  error?: string | undefined;
  /** The error is the inspection running out of time, which load on the gateway can cause: tried again later. */
  timedOut?: boolean | undefined;
  /**
   * Set when part of the message could not be scanned, with the reason: more text than
   * detectors.maxScanBytes, or an S/MIME part the gateway cannot read (encrypted,
   * compressed, malformed, too large). What was not scanned may hold PHI, so the policy's detector-score conditions hold, as
   * if the detectors had found it (protection is raised, never "nothing found").
   */
  unscanned?: string | undefined;
}

/** Why and how one recipient gets the message. */
export interface Decision {
  rcpt: string;
  /** Which rule or layer decided: a rule id, "domain:<pattern>", "recipient:<addr>" or "default". */
  ruleId: string;
  reasons: string[];
  /** Methods to try, in order. */
  candidates: ProtectionMethod[];
  tls: RequiredTls;
  /** What to do when none of the candidates is possible. */
  onNoMethod: 'portal' | 'defer' | 'bounce';
  /** The method chosen now, when one is possible. */
  method?: ProtectionMethod | undefined;
  /** How long the portal keeps this recipient's copy, when the policy says so. */
  portalExpiryMs?: number | undefined;
  /** Whether this recipient's portal notice shows the subject / the sender gets a read receipt, when the policy says (else portal.*). */
  portalShowSubject?: boolean | undefined;
  portalReadReceipts?: boolean | undefined;
  /** The key used for pgp / smime, and where it came from. */
  key?: { kind: 'pgp' | 'smime'; id: string; source: string } | undefined;
}
