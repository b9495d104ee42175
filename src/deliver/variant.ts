import { isAscii } from 'node:buffer';
import type { Readable } from 'node:stream';
import { EVENTS, type Logger } from '../events/logger.js';
import { domainOf } from '../ingress/authorize.js';
import type { GroupKey, SendGroup } from '../policy/planner.js';
import { headerEnd, readHeaderSectionOf } from '../protect/header-end.js';
import type { Protector } from '../protect/protector.js';
import { removeSubjectTag } from '../protect/subject-tag.js';
import type { QueueBackend } from '../queue/backend.js';
import type { DkimSigner, Signed } from '../sign/dkim.js';
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

  /**
   * original: the whole stored message (read once per attempt, shared by variants).
   * `size` is what MAIL FROM declares (RFC 1870: the bytes sent after DATA), so it is the
   * size of the message as it leaves, not as it was stored: the tag removal may make the
   * Subject longer (a B-encoded subject comes back Q-encoded), and the signer puts in the
   * blank line a message without one lacks (signable.ts), 2 or 4 bytes more.
   */
  async build(envelope: Envelope, v: Variant, original: () => Promise<Buffer>): Promise<Outgoing> {
    const tag = this.subjectTag();
    const stored = async () => this.queue.bodyInMemory?.(envelope.id) ?? (await this.queue.openBody(envelope.id));
    const clear = async () => (v.stripSubjectTag ? removeSubjectTag(await stored(), tag) : stored());
    let base: () => Promise<Buffer | Readable> = clear;
    let size = envelope.size;
    // As the client declared it, unless the stored body is 7-bit all through: many clients
    // declare BODY=8BITMIME for every message, and such a message needs no 8BITMIME at the
    // next hop (a body the client declared 7-bit is sent as declared, as it was before).
    // A message spooled before bodyBits was recorded goes as declared.
    let eightBit = envelope.bodyType === '8bitmime' && envelope.bodyBits !== '7bit';
    if (v.method !== 'tls') {
      const encrypted = await this.encrypt(envelope, v, v.key as GroupKey, await original());
      base = async () => encrypted;
      size = encrypted.length;
      eightBit = !isAscii(encrypted);
    }
    const common = { domain: v.domain, rcpts: v.rcpts, minTls: v.minTls, requireMtaSts: v.requireMtaSts, eightBit };
    if (this.signer?.enabled) {
      const signed = await this.sign(this.signer, envelope, await base());
      if (signed) return { ...common, open: async () => prependHeader(signed.header, await base()), size: signed.header.length + signed.signedSize };
    }
    if (v.method === 'tls' && v.stripSubjectTag) size += await tagRemovalGrowth(await stored(), tag);
    return { ...common, open: base, size };
  }

  /** DKIM-signs a variant's message (the signer counts the bytes it signed: the message as sent after the signature). */
  private async sign(signer: DkimSigner, envelope: Envelope, message: Buffer | Readable): Promise<Signed | undefined> {
    return signer.sign(message, { mailFrom: envelope.mailFrom, queueId: envelope.id, senderDomains: envelope.senderDomains }).catch((err: Error) => {
      throw new VariantError('dkim', err.message);
    });
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

/** Headers larger than this are left alone by the tag removal (subject-tag.ts). */
const MAX_TAGGED_HEADER = 1024 * 1024;

/**
 * How many bytes removing the tag adds to a stored message (negative: takes away). Only
 * its header section changes, so only that is read and edited: cut off where it ends, it
 * ends there again, and the edit is the one made to the whole message.
 */
async function tagRemovalGrowth(stored: Buffer | Readable, tag: string): Promise<number> {
  const head = Buffer.isBuffer(stored) ? stored.subarray(0, headerEnd(stored).body) : await readHeaderSection(stored);
  return head ? (removeSubjectTag(head, tag) as Buffer).length - head.length : 0;
}

/** A stream's header section (blank line included), or undefined past MAX_TAGGED_HEADER; the rest is never read. */
async function readHeaderSection(stream: Readable): Promise<Buffer | undefined> {
  const { read, end } = await readHeaderSectionOf(stream, MAX_TAGGED_HEADER + 1);
  return end && read.subarray(0, end.body);
}
