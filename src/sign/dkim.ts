import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { EVENTS, type Logger } from '../events/logger.js';
import { withinSenderDomains } from '../ingress/authorize.js';
import { keysFor, type DkimKey } from './dkim-keys.js';
import { dkimSignatures } from './dkim-signature.js';
import { headerBlockOf, peekHeaders } from './peek-headers.js';
import { signingDomain } from './sender-domain.js';
import { signable, signableStream } from './signable.js';

export interface Signed {
  /** DKIM-Signature header field(s), CRLF-terminated, to put in front of the message. */
  header: Buffer;
  domain: string;
  selectors: string[];
  /**
   * Bytes of the message as signed, the signature not included: what prependHeader sends
   * after it (the signable form, signable.ts), so MAIL FROM's SIZE can be declared.
   */
  signedSize: number;
}

export class DkimError extends Error {}

export interface SignContext {
  mailFrom: string;
  queueId: string;
  /** The sender domains the client was bound to (Envelope.senderDomains): only those are signed for. */
  senderDomains?: string[][] | undefined;
}

/**
 * DKIM signing (RFC 6376, relaxed/relaxed; RFC 8463 for ed25519) of a message in its
 * final form (dkim-signature.ts). The input is read once, as a stream when it is one, so
 * a 25 MB message is hashed in chunks and never held whole. What is signed is the message
 * with its header section ended by a blank line (signable.ts), and prependHeader sends
 * it in that same form.
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
   * key signs for that domain, or when the client was bound to sender domains and that
   * domain is not one of them; rejects with DkimError when signing fails.
   */
  async sign(message: Buffer | Readable, ctx: SignContext): Promise<Signed | undefined> {
    const input = Buffer.isBuffer(message) ? signable(message) : counted(signableStream(message));
    const peeked = Buffer.isBuffer(input) ? { headers: headerBlockOf(input), stream: input } : await peekHeaders(input);
    try {
      const signed = await this.signPeeked(peeked, ctx);
      // Made once the whole message was read (its body hash): every byte has been counted.
      return signed && { ...signed, signedSize: Buffer.isBuffer(input) ? input.length : input.bytes };
    } catch (err) {
      // A signer that fails mid-body stops reading: the spool stream behind the peeked one
      // would stay open, its descriptor held, once per attempt. Destroying the peeked
      // stream destroys it too (peekHeaders, signableStream).
      if (!Buffer.isBuffer(peeked.stream)) peeked.stream.destroy();
      throw err;
    }
  }

  /** sign, once the header block is known; the stream is the whole message. */
  private async signPeeked(peeked: { headers: string; stream: Buffer | Readable }, ctx: SignContext): Promise<Omit<Signed, 'signedSize'> | undefined> {
    const domain = signingDomain(peeked.headers, ctx.mailFrom);
    const keys = domain ? keysFor(this.keys, domain) : [];
    if (!domain || !keys.length) {
      if (!Buffer.isBuffer(peeked.stream)) peeked.stream.destroy();
      // Debug only (most mail from a domain without a key is meant so), but it is the line
      // that shows a typo in dkim.keys[].domain: the domain as it was looked up.
      this.log.debug({ event: EVENTS.dkimUnsigned, queueId: ctx.queueId, fromDomain: domain ?? null }, 'not DKIM-signed: no dkim.keys entry for the sender domain or a parent');
      return undefined;
    }
    // The From header is the client's to write: a client bound to tenant-a.test must not get
    // tenant-b.test's signature on a From it made up (forwarded mail, whose From is an
    // outside author, goes unsigned as before, as we hold no key for the author's domain).
    // At warn: a key would have signed, so either senderDomains lacks a domain or a client
    // is sending as someone else's.
    if (ctx.senderDomains && !withinSenderDomains(ctx.senderDomains, domain)) {
      if (!Buffer.isBuffer(peeked.stream)) peeked.stream.destroy();
      this.log.warn({ event: EVENTS.dkimUnsigned, queueId: ctx.queueId, fromDomain: domain, reason: "From domain outside the client's senderDomains" }, "not DKIM-signed: From domain outside the client's senderDomains");
      return undefined;
    }
    const signatures = await dkimSignatures(peeked.stream, keys).catch((err: Error) => {
      throw new DkimError(`DKIM signing for ${domain} failed: ${err.message}`);
    });
    const selectors = keys.map((k) => k.selector);
    this.log.info({ event: EVENTS.dkimSigned, queueId: ctx.queueId, domain: keys[0]!.domain, fromDomain: domain, selector: selectors.join(','), algorithm: keys.map((k) => k.algorithm).join(',') }, 'DKIM signed');
    return { header: Buffer.from(signatures.map((line) => `${line}\r\n`).join(''), 'latin1'), domain: keys[0]!.domain, selectors };
  }
}

/** A stream whose bytes are counted as they are read (pipeline: destroying it destroys the source). */
function counted(source: Readable): ByteCount {
  const out = new ByteCount();
  pipeline(source, out, () => undefined); // an error reaches the reader of `out`
  return out;
}

class ByteCount extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}
