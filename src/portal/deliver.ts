import libmime from 'libmime';
import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { QueueBackend } from '../queue/backend.js';
import { enqueueLocal } from '../queue/enqueue.js';
import type { DeliveryState, Envelope } from '../types.js';
import { buildNotice, smsText } from './notice.js';
import { isE164, normalizePhone } from './phone.js';
import { portalReach, type PortalReach } from './reach.js';
import { sendSms, SmsError } from './sms.js';
import { RESET_VALID_MS, type PortalStore } from './store.js';

/** A recipient's portal settings from their policy rule; unset ones come from portal.*. */
export interface PortalRcptSettings {
  showSubject?: boolean | undefined;
  readReceipts?: boolean | undefined;
}

/** How a reset link went out: the notice's queue id, or the SMS provider's message id. */
export type ResetSent = { via: 'mail'; noticeQueueId: string } | { via: 'sms'; sms: string };

export interface PortalOutcome {
  rcpt: string;
  result: 'delivered' | 'defer' | 'bounce';
  status: string;
  response: string;
  category: string;
}

/**
 * The `portal` method: the message is stored encrypted (once per message, shared by its
 * portal recipients) and each recipient gets a notice with a link — by mail, or by SMS
 * for <digits>@<sms domain>. The link's token has 256 bits of randomness; only its hash
 * is kept.
 */
export class PortalDelivery {
  constructor(
    private readonly config: PosternConfig,
    private readonly store: PortalStore,
    private readonly queue: QueueBackend,
    private readonly log: Logger,
  ) {
    this.reach = portalReach(config);
  }

  private listenPort: number | undefined;
  private readonly reach: PortalReach | undefined;

  /** The port the web app actually listens on (when configured as 0). */
  setListenPort(port: number): void {
    this.listenPort = port;
  }

  publicUrl(): string {
    const p = this.config.portal;
    return (p.publicUrl ?? `https://${this.config.hostname}:${this.listenPort ?? p.listen.port}`).replace(/\/$/, '');
  }

  /** Whether the portal can serve this recipient (SMS recipients need a provider). */
  canServe(rcpt: string): boolean {
    return Boolean(this.reach?.canServe(rcpt));
  }

  isSms(rcpt: string): boolean {
    return Boolean(this.reach?.isSms(rcpt));
  }

  /**
   * expiryMs: the shortest expiry the recipients' decisions ask for (default portal.expiry);
   * settings: per recipient, what their policy rule says of the subject and read receipts.
   */
  async deliver(envelope: Envelope, state: DeliveryState, raw: Buffer, rcpts: string[], why: string, expiryMs = this.config.portal.expiry, settings = new Map<string, PortalRcptSettings>()): Promise<PortalOutcome[]> {
    const p = this.config.portal;
    const receiptsFor = rcpts.filter((r) => settings.get(r)?.readReceipts ?? p.readReceipts);
    let messageId = state.portalMessageId;
    const existing = messageId ? await this.store.get(messageId) : undefined;
    let expiresAt: number;
    if (!messageId || !existing) {
      const now = Date.now();
      const stored = await this.store.putMessage(raw, {
        createdAt: now,
        expiresAt: now + expiryMs,
        sender: envelope.mailFrom,
        recipients: rcpts,
        queueId: envelope.id,
        kind: 'received',
        receiptsFor,
      });
      messageId = stored.id;
      expiresAt = stored.expiresAt;
      state.portalMessageId = messageId;
    } else {
      expiresAt = existing.expiresAt;
      const add = rcpts.filter((r) => !existing.recipients.includes(r));
      if (add.length) {
        await this.store.updateMessage(messageId, (current) => ({
          ...current,
          recipients: [...current.recipients, ...rcpts.filter((r) => !current.recipients.includes(r))],
          receiptsFor: current.receiptsFor && [...current.receiptsFor, ...receiptsFor.filter((r) => !current.receiptsFor?.includes(r))],
        }));
      }
    }
    const senderName = senderDisplayName(raw) || envelope.mailFrom || 'Someone';
    const subject = headerValue(raw, 'subject');
    const outcomes: PortalOutcome[] = [];
    for (const rcpt of rcpts) {
      // One recipient's failed notice must not undo the others' (they would get theirs twice).
      const shown = (settings.get(rcpt)?.showSubject ?? p.showSubject) ? subject : undefined;
      const outcome = await this.notify(envelope, rcpt, { id: messageId, expiresAt }, senderName, shown, why).catch((err: Error): PortalOutcome => ({ rcpt, result: 'defer', status: '4.3.0', response: `portal notice failed: ${err.message}`, category: 'portal' }));
      outcomes.push(outcome);
    }
    return outcomes;
  }

  /**
   * Mails (or texts) a single-use password-reset link, valid 30 minutes, to an account's
   * stored identity (a Secure Text one holds its number in E.164, used as it is: it must
   * not depend on how numbers are normalised today). Resolves with how it went out;
   * throws with the reason when it could not (so nobody logs it as sent).
   */
  async sendReset(address: string): Promise<ResetSent> {
    if (this.isSms(address)) {
      const phone = address.slice(0, address.lastIndexOf('@'));
      const provider = this.config.portal.sms.provider;
      if (!isE164(phone)) throw new Error(`${phone} is not a Secure Text identity (an E.164 number)`);
      if (!provider) throw new Error('Secure Text account, but no SMS provider is configured (portal.sms.provider)');
      const link = await this.resetLink(address);
      return { via: 'sms', sms: await sendSms(provider, phone, smsText(this.config, { senderName: '', link, kind: 'reset' })) };
    }
    const notice = await buildNotice(this.config, { to: address, senderName: '', link: await this.resetLink(address), kind: 'reset' });
    const queued = await enqueueLocal(this.queue, { hostname: this.config.hostname, from: '', to: [address], raw: notice, origin: 'portal-notice', sessionId: 'portal-reset' });
    return { via: 'mail', noticeQueueId: queued.id };
  }

  private async resetLink(address: string): Promise<string> {
    const now = Date.now();
    const token = await this.store.createToken({ kind: 'reset', recipient: address, createdAt: now, expiresAt: now + RESET_VALID_MS });
    return `${this.publicUrl()}/r/${token}`;
  }

  /** The link works for as long as the message is kept (a rule's portalExpiry, else portal.expiry), no longer and no shorter. */
  private async notify(envelope: Envelope, rcpt: string, message: { id: string; expiresAt: number }, senderName: string, subject: string | undefined, why: string): Promise<PortalOutcome> {
    const messageId = message.id;
    const token = await this.store.createToken({ kind: 'notice', recipient: rcpt, messageId, expiresAt: message.expiresAt });
    const link = `${this.publicUrl()}/m/${token}`;
    const base = { rcpt, category: 'portal' };
    if (this.isSms(rcpt)) {
      const phone = normalizePhone(rcpt.slice(0, rcpt.lastIndexOf('@')), this.config.portal.sms.defaultCountry);
      if (!phone) return { ...base, result: 'bounce', status: '5.1.3', response: `${rcpt.split('@')[0]} is not a valid phone number for Secure Text` };
      const provider = this.config.portal.sms.provider;
      if (!provider) return { ...base, result: 'defer', status: '4.3.5', response: 'Secure Text recipient, but no SMS provider is configured (portal.sms.provider)' };
      try {
        const sid = await sendSms(provider, phone, smsText(this.config, { senderName, link, kind: 'message' }));
        this.log.info({ event: EVENTS.portalNotice, queueId: envelope.id, to: rcpt, via: 'sms', portalId: messageId, sms: sid }, 'portal notice sent by SMS');
        return { ...base, result: 'delivered', status: '2.0.0', response: `stored in the portal (${messageId}); SMS notice accepted by the provider (${sid}); ${why}` };
      } catch (err) {
        // SmsError texts are ours (status, a known error code): the provider's answer may echo the link.
        if (err instanceof SmsError && err.invalidNumber) return { ...base, result: 'bounce', status: '5.1.3', response: `the SMS provider refused ${phone} for Secure Text: ${err.invalidNumber}` };
        return { ...base, result: 'defer', status: '4.4.0', response: err instanceof SmsError ? err.message : 'SMS provider failed' };
      }
    }
    const notice = await buildNotice(this.config, { to: rcpt, senderName, link, subject, kind: 'message' });
    const queued = await enqueueLocal(this.queue, { hostname: this.config.hostname, from: '', to: [rcpt], raw: notice, origin: 'portal-notice', sessionId: `portal-${envelope.id}` });
    this.log.info({ event: EVENTS.portalNotice, queueId: envelope.id, to: rcpt, via: 'mail', portalId: messageId, noticeQueueId: queued.id }, 'portal notice queued');
    return { ...base, result: 'delivered', status: '2.0.0', response: `stored in the portal (${messageId}); notice queued as ${queued.id}; ${why}` };
  }
}

function headerBlock(raw: Buffer): string {
  const end = raw.indexOf('\r\n\r\n');
  return raw.subarray(0, end === -1 ? Math.min(raw.length, 65536) : end).toString('latin1').replace(/\r\n[ \t]+/g, ' ');
}

function headerValue(raw: Buffer, name: string): string | undefined {
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(headerBlock(raw));
  if (!m) return undefined;
  try {
    return libmime.decodeWords(Buffer.from(m[1] as string, 'latin1').toString('utf8')).trim();
  } catch {
    return (m[1] as string).trim();
  }
}

/** The display name of From ("Dr. Ada Smith" <a@b>), or the address. */
function senderDisplayName(raw: Buffer): string | undefined {
  const from = headerValue(raw, 'from');
  if (!from) return undefined;
  const named = /^\s*"?([^"<]+?)"?\s*<[^>]+>/.exec(from);
  return (named ? named[1] : from)?.trim().slice(0, 100);
}
