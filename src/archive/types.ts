import type { Readable } from 'node:stream';
import type { Decision, Envelope, ProtectionMethod } from '../types.js';

/** What the delivery worker hands the journal: one per message, before any delivery. */
export interface JournalItem {
  envelope: Envelope;
  decisions: Decision[];
  /** The message as received (the spool's body); a function is called once per sink. */
  body: Buffer | (() => Promise<Readable>);
  /** Detector categories found by inspection (DeliveryState.inspection.categories). */
  categories?: string[] | undefined;
  /**
   * Recipients this attempt does not send (the planner's `held`): no method was possible
   * (deferred or bounced by policy), or the message could not be inspected. The index
   * records that, not a method that was never used.
   */
  held?: { rcpt: string; result: 'defer' | 'bounce'; reason: string }[] | undefined;
  /**
   * Sinks that already hold this message (DeliveryState.journaledSinks, from an earlier
   * attempt on which another sink failed): not asked again, so a sink that is down for
   * hours does not make the others store a copy on every retry.
   */
  storedIn?: readonly string[] | undefined;
}

/** One recipient in the index: what happened to it when the message was journaled. */
export interface RecipientEntry {
  rcpt: string;
  /**
   * The method it is sent with; 'defer' / 'bounce': held, no method was possible (or the
   * message could not be inspected); 'none': no decision had been made for it.
   */
  method: ProtectionMethod | 'defer' | 'bounce' | 'none';
  ruleId: string;
  /** Why the entry has no method (with 'defer', 'bounce' and 'none'). */
  reason?: string | undefined;
}

/** The index metadata of one item; stored encrypted with the item's own data key. */
export interface ItemMeta {
  id: string;
  receivedAt: number;
  mailFrom: string;
  rcptTo: string[];
  subject: string;
  messageId?: string | undefined;
  size: number;
  recipients: RecipientEntry[];
  categories: string[];
  client: { ip: string; helo: string };
}

/** A journal item after the journal has looked at it once, as sinks receive it. */
export interface PreparedItem {
  envelope: Envelope;
  meta: ItemMeta;
  openBody(): Promise<Buffer | Readable>;
}

/** One place journal items go. store() resolves only once the item is durably there. */
export interface JournalSink {
  readonly name: string;
  store(item: PreparedItem): Promise<void>;
  /**
   * Whether a store() error refused this one item (it would be refused again, the next
   * item may well pass: e.g. the archive mailbox answers 552 to a message too large),
   * rather than the sink being unavailable. Only unavailability makes the gateway not
   * ready; without this method every failure counts as unavailability.
   */
  refusedItemOnly?(err: unknown): boolean;
  close(): Promise<void>;
}
