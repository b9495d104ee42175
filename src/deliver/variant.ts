import type { Readable } from 'node:stream';
import { EVENTS, type Logger } from '../events/logger.js';
import { domainOf } from '../ingress/authorize.js';
import type { GroupKey, SendGroup } from '../policy/planner.js';
import type { Protector } from '../protect/protector.js';
import { removeSubjectTag } from '../protect/subject-tag.js';
import type { QueueBackend } from '../queue/backend.js';
import type { DkimSigner } from '../sign/dkim.js';
import { headerBlockOf } from '../sign/peek-headers.js';
import { prependHeader } from '../sign/prepend.js';
import { senderDomain } from '../sign/sender-domain.js';
import type { Envelope } from '../types.js';
import type { Outgoing } from './domain-sender.js';

/** Recipients sharing one transformed body and one next-hop domain (DESIGN.md). */
export interface Variant extends Omit<SendGroup, 'rcpts'> {
  domain: string;
  rcpts: string[];
}

/** One variant per group and recipient domain. */
export function variantsOf(groups: SendGroup[]): Variant[] {
  return groups.flatMap((g) => {
    const byDomain = new Map<string, string[]>();
    for (const rcpt of g.rcpts) byDomain.set(domainOf(rcpt), [...(byDomain.get(domainOf(rcpt)) ?? []), rcpt]);
    return [...byDomain].map(([domain, rcpts]) => ({ ...g, domain, rcpts }));
  });
}

/** Why a variant could not be made; nothing of it was sent. */
export class VariantError extends Error {
  constructor(
    readonly stage: 'protect' | 'dkim',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Makes a variant's final message, in this order: the [secure] tag removed (when the
 * policy says), encrypted (pgp, smime), then DKIM-signed, so the signature covers the
 * bytes that leave. A clear variant stays a stream from the queue (read once to sign,
 * once per send); an encrypted one is built in memory once.
 */
export class VariantBuilder {
  constructor(
    private readonly queue: QueueBackend,
    private readonly subjectTag: () => string,
    private readonly log: Logger,
    private readonly protector?: Protector,
    private readonly signer?: DkimSigner,
  ) {}

  /** original: the whole stored message (read once per attempt, shared by variants). */
  async build(envelope: Envelope, v: Variant, original: () => Promise<Buffer>): Promise<Outgoing> {
    const stored = async () => this.queue.bodyInMemory?.(envelope.id) ?? (await this.queue.openBody(envelope.id));
    const clear = async () => (v.stripSubjectTag ? removeSubjectTag(await stored(), this.subjectTag()) : stored());
    let base: () => Promise<Buffer | Readable> = clear;
    let size = envelope.size;
    let eightBit = envelope.bodyType === '8bitmime';
    if (v.method !== 'tls') {
      const encrypted = await this.encrypt(envelope, v, v.key as GroupKey, await original());
      base = async () => encrypted;
      size = encrypted.length;
      eightBit = encrypted.some((b) => b > 0x7f);
    }
    let open = base;
    if (this.signer?.enabled) {
      const signed = await this.signer.sign(await base(), { mailFrom: envelope.mailFrom, queueId: envelope.id }).catch((err: Error) => {
        throw new VariantError('dkim', err.message);
      });
      if (signed) {
        open = async () => prependHeader(signed.header, await base());
        size += signed.header.length;
      }
    }
    return { domain: v.domain, rcpts: v.rcpts, minTls: v.minTls, requireMtaSts: v.requireMtaSts, open, size, eightBit };
  }

  private async encrypt(envelope: Envelope, v: Variant, key: GroupKey, raw: Buffer): Promise<Buffer> {
    if (!this.protector) throw new VariantError('protect', `${v.method} encryption is not set up in this process`);
    const clear = v.stripSubjectTag ? (removeSubjectTag(raw, this.subjectTag()) as Buffer) : raw;
    try {
      const out = await this.protector.protect(clear, { method: v.method as 'pgp' | 'smime', recipientKeys: [key.material], senderDomain: senderDomain(headerBlockOf(clear), envelope.mailFrom) });
      this.log.info({ event: EVENTS.protectEncrypted, queueId: envelope.id, to: v.rcpts, method: v.method, keyId: key.id, keySource: key.source, bytes: out.length }, 'variant encrypted');
      return out;
    } catch (err) {
      throw new VariantError('protect', `${v.method === 'pgp' ? 'OpenPGP' : 'S/MIME'} encryption to ${key.id} failed: ${(err as Error).message}`);
    }
  }
}
