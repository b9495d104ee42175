import type { Readable } from 'node:stream';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { keysFor, type DkimKey } from './dkim-keys.js';
import { headerBlockOf, peekHeaders } from './peek-headers.js';
import { senderDomain } from './sender-domain.js';

export interface Signed {
  /** DKIM-Signature header field(s), CRLF-terminated, to put in front of the message. */
  header: Buffer;
  domain: string;
  selectors: string[];
}

export class DkimError extends Error {}

/**
 * DKIM signing (RFC 6376, relaxed/relaxed; RFC 8463 for ed25519) of a message in its
 * final form, with mailauth's signer. The input is read once, as a stream when it is
 * one, so a 25 MB message is hashed in chunks and never held whole.
 */
export class DkimSigner {
  constructor(
    private readonly keys: DkimKey[],
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /**
   * Signs for the From domain (else the envelope sender's). Resolves undefined when no
   * key signs for that domain; rejects with DkimError when signing fails.
   */
  async sign(message: Buffer | Readable, ctx: { mailFrom: string; queueId: string }): Promise<Signed | undefined> {
    const peeked = Buffer.isBuffer(message) ? { headers: headerBlockOf(message), stream: message } : await peekHeaders(message);
    try {
      return await this.signPeeked(peeked, ctx);
    } catch (err) {
      // A signer that fails mid-body stops reading: the spool stream behind the peeked one
      // would stay open, its descriptor held, once per attempt. Destroying the peeked
      // stream destroys it too (peekHeaders).
      if (!Buffer.isBuffer(peeked.stream)) peeked.stream.destroy();
      throw err;
    }
  }

  /** sign, once the header block is known; the stream is the whole message. */
  private async signPeeked(peeked: { headers: string; stream: Buffer | Readable }, ctx: { mailFrom: string; queueId: string }): Promise<Signed | undefined> {
    const domain = senderDomain(peeked.headers, ctx.mailFrom);
    const keys = domain ? keysFor(this.keys, domain) : [];
    if (!domain || !keys.length) {
      if (!Buffer.isBuffer(peeked.stream)) peeked.stream.destroy();
      return undefined;
    }
    const result = await dkimSign(peeked.stream, {
      canonicalization: 'relaxed/relaxed',
      signatureData: keys.map((k) => ({ signingDomain: k.domain, selector: k.selector, privateKey: k.privateKey, algorithm: k.algorithm })),
    } as Parameters<typeof dkimSign>[1]).catch((err: Error) => {
      throw new DkimError(`DKIM signing for ${domain} failed: ${err.message}`);
    });
    const errors = (result.errors ?? []) as { selector?: string; err?: Error }[];
    if (!errors.length && !result.signatures.trim()) throw new DkimError(`DKIM signing for ${domain} produced no signature`);
    if (errors.length) throw new DkimError(`DKIM signing for ${domain} failed: ${errors.map((e) => `${e.selector ?? '?'}: ${e.err?.message ?? 'error'}`).join('; ')}`);
    const selectors = keys.map((k) => k.selector);
    this.log.info({ event: EVENTS.dkimSigned, queueId: ctx.queueId, domain: keys[0]!.domain, fromDomain: domain, selector: selectors.join(','), algorithm: keys.map((k) => k.algorithm).join(',') }, 'DKIM signed');
    return { header: Buffer.from(result.signatures, 'latin1'), domain: keys[0]!.domain, selectors };
  }
}
