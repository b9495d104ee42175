import type { MimeNode } from '@zone-eu/mailsplit';
import libmime from 'libmime';
import type { AttachmentFact } from '../types.js';
import { detectionText } from './part-text.js';
import { partNamesText } from './part-names.js';
import { SmimeBody } from './smime-body.js';
import { foldForDetection } from './unicode-fold.js';

export interface InspectLimits {
  /** Deepest multipart nesting accepted. */
  maxDepth: number;
  maxParts: number;
  /** Decoded text kept for the detectors, all parts together. */
  maxTextBytes: number;
  /** Largest header block of one MIME part. */
  maxHeaderBytes: number;
  /**
   * Largest S/MIME body (decoded) opened to inspect the content it signs: it is read whole.
   * A larger one is left unscanned (see ParsedMessage.unscanned).
   */
  maxSmimeBytes: number;
  timeoutMs: number;
}

export const DEFAULT_INSPECT_LIMITS: InspectLimits = {
  maxDepth: 20,
  maxParts: 500,
  maxTextBytes: 2 * 1024 * 1024,
  maxHeaderBytes: 256 * 1024,
  maxSmimeBytes: 32 * 1024 * 1024,
  timeoutMs: 10_000,
};

export interface TextSource {
  /** name: a part's file name and description (part-names.ts). */
  source: 'subject' | 'text' | 'html' | 'attachment' | 'name';
  text: string;
}

export interface ParsedMessage {
  subject: string;
  from: string;
  messageId?: string | undefined;
  headers: Record<string, string[]>;
  texts: TextSource[];
  attachments: AttachmentFact[];
  parts: number;
  error?: string | undefined;
  /** The error is a timeout (InspectTimeoutError). */
  timedOut?: boolean | undefined;
  /**
   * Why some of the message could not be scanned, when that is so: text over the budget, or
   * an S/MIME part the gateway cannot read (encrypted: enveloped-data) or does not open.
   * Either may hold PHI, so it counts as PHI found (see MessageFacts.unscanned), never as
   * nothing found. Not an error: the message is sound, and an encrypted one is normal mail
   * that must not be bounced; what it holds is unknown, so the policy raises protection
   * as it does for text over the budget (a rule can match the Content-Type header to
   * treat encrypted mail otherwise).
   */
  unscanned?: string | undefined;
}

/** An inspection that could not finish within the limits (a MIME bomb, say). */
export class InspectLimitError extends Error {}

/** The inspection ran out of time: this can come from load on the gateway, not from the message. */
export class InspectTimeoutError extends InspectLimitError {}

const TEXT_LIKE = /^(text\/|application\/(json|xml|csv|x-csv|rtf|x-yaml|yaml))/;
/** Names that say text whatever type the sender declared (Excel's CSV is application/vnd.ms-excel). */
const TEXT_NAME = /\.(txt|text|csv|tsv|json|xml|md|log|ics|vcf|yaml|yml|rtf)$/i;
const HTML_NAME = /\.(htm|html|xhtml)$/i;
/** An .eml attachment is a message whatever its declared type: it is opened as one. */
const MESSAGE_NAME = /\.eml$/i;
const EMBEDDED_TYPES = new Set(['message/rfc822', 'message/global']);
/** S/MIME bodies (RFC 8551; x-pkcs7-mime is the older name), whatever their smime-type says. */
const SMIME_TYPES = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);
const SMIME_NAME = /\.p7m$/i;

/**
 * Splits an embedded message (written to `input`) into a collector's parts; parse.ts
 * provides it (the splitter lives there). `abort` ends the split early.
 */
export type SplitEmbedded = (collector: PartCollector) => { input: NodeJS.WritableStream; done: Promise<void>; abort: (err: Error) => void };

/** What the collectors of one message and of the messages embedded in it share. */
interface SharedBudget {
  parts: number;
  textBytes: number;
  /** Set when text was left out for want of budget: the scan is then incomplete. */
  textCut: boolean;
  /** Why a part could not be read (an encrypted S/MIME part, say): the scan is then incomplete. */
  unreadable?: string | undefined;
  aborts: Set<(err: Error) => void>;
  /** The inspection failed or ran out of time: open nothing more. */
  aborted: boolean;
}

interface OpenPart {
  node: MimeNode;
  attachment?: AttachmentFact | undefined;
  /** Kept text of a text part: its decoded bytes, then its place in result.texts. */
  text?: { chunks: Buffer[]; bytes: number; slot: TextSource } | undefined;
  /** base64 or quoted-printable; other encodings are the bytes themselves. */
  decoder?: NodeJS.ReadWriteStream | undefined;
  /** An embedded message: its (decoded) bytes go to a split of their own. */
  embedded?: NodeJS.WritableStream | undefined;
  /** An S/MIME body: its decoded bytes, opened when the part ends (`ended`). */
  smime?: { body: SmimeBody; ended: () => void } | undefined;
}

/** The transfer encodings that need decoding (mailsplit passes any other through as is). */
const ENCODED = new Set(['base64', 'quoted-printable']);

/**
 * What inspection keeps of each MIME part, whichever way the message was split: the
 * root's headers, the decoded text of text, HTML and text-like attachment parts (within
 * the text budget), each part's file name and description as text for the detectors,
 * and attachment names, types and sizes. Limits on part count and depth throw
 * InspectLimitError.
 */
export class PartCollector {
  readonly result: ParsedMessage = { subject: '', from: '', headers: {}, texts: [], attachments: [], parts: 0 };
  private current: OpenPart | undefined;
  private readonly decoding = new Set<Promise<void>>();
  /** Placeholder slots in result.texts, each replaced at the end by an embedded message's texts. */
  private readonly embeddedTexts = new Map<TextSource, TextSource[]>();
  private readonly shared: SharedBudget;

  /**
   * @param splitEmbedded opens embedded messages; without it they are attachments only.
   * @param depthBase how deep this collector's message sits inside the outermost one.
   */
  constructor(
    private readonly limits: InspectLimits,
    private readonly splitEmbedded?: SplitEmbedded,
    private readonly depthBase = 0,
    shared?: SharedBudget,
  ) {
    this.shared = shared ?? { parts: 0, textBytes: limits.maxTextBytes, textCut: false, aborts: new Set(), aborted: false };
  }

  /** A new MIME node (headers parsed): ends the previous part. */
  node(node: MimeNode): void {
    this.endPart();
    const result = this.result;
    result.parts++;
    if (++this.shared.parts > this.limits.maxParts) throw new InspectLimitError(`more than ${this.limits.maxParts} MIME parts`);
    if (this.depthBase + depthOf(node) > this.limits.maxDepth) throw new InspectLimitError(`MIME parts nested deeper than ${this.limits.maxDepth} levels`);
    if (node.root) readRootHeaders(node, result);
    if (node.multipart) return;
    const contentType = node.contentType || 'text/plain';
    const filename = node.filename || '';
    const isMessage = EMBEDDED_TYPES.has(contentType) || MESSAGE_NAME.test(filename);
    const isAttachment = node.disposition === 'attachment' || Boolean(filename) || isMessage;
    const attachment = isAttachment ? { filename: filename || undefined, contentType, size: 0 } : undefined;
    if (attachment) result.attachments.push(attachment);
    // What the part is called is read as the subject is: PHI in a file name is PHI sent.
    const names = partNamesText(node);
    if (names) result.texts.push({ source: 'name', text: names });
    const part: OpenPart = { node, attachment };
    this.current = part;
    if (isMessage && this.splitEmbedded) return this.openEmbedded(part);
    if ((SMIME_TYPES.has(contentType) || SMIME_NAME.test(filename)) && this.splitEmbedded) return this.openSmime(part);
    const kind = textKind(contentType, filename, Boolean(attachment));
    if (!kind) return;
    // The slot keeps the texts in the message's order, whenever their decoding ends.
    part.text = { chunks: [], bytes: 0, slot: { source: kind, text: '' } };
    result.texts.push(part.text.slot);
    if (ENCODED.has(node.encoding || '')) part.decoder = this.decode(part, (chunk) => this.keep(part, chunk), () => this.finishText(part));
  }

  /** Body bytes of the current part, still transfer-encoded. */
  body(chunk: Buffer): void {
    const part = this.current;
    if (!part) return;
    if (part.decoder) part.decoder.write(chunk);
    else if (part.embedded) this.feedEmbedded(part, chunk);
    else if (part.smime) this.keepSmime(part, chunk);
    else if (part.text) this.keep(part, chunk);
    else if (part.attachment) part.attachment.size += estimateDecoded(chunk.length, part.node.encoding || '');
  }

  /** The message ended: waits for the decoders of text parts and embedded messages to finish. */
  async end(): Promise<ParsedMessage> {
    this.endPart();
    await Promise.all(this.decoding);
    const result = this.result;
    if (this.embeddedTexts.size) result.texts = result.texts.flatMap((slot) => this.embeddedTexts.get(slot) ?? [slot]);
    if (result.subject) result.texts.unshift({ source: 'subject', text: foldForDetection(result.subject) });
    if (this.depthBase === 0) {
      if (this.shared.textCut) result.unscanned ??= textLimitMessage(this.limits.maxTextBytes);
      result.unscanned ??= this.shared.unreadable;
    }
    return result;
  }

  /** Ends the splits of embedded messages still open (the inspection failed or ran out of time). */
  abort(err: Error): void {
    this.shared.aborted = true;
    for (const abort of this.shared.aborts) abort(err);
  }

  private endPart(): void {
    const part = this.current;
    this.current = undefined;
    if (part?.decoder) part.decoder.end();
    else if (part?.embedded) part.embedded.end();
    else if (part?.smime) part.smime.ended();
    else if (part?.text) this.finishText(part);
  }

  /**
   * An embedded message (a forward, an .eml) is split as a message of its own, its
   * headers and texts scanned in its place: the splitter opens only those declared
   * inline and not transfer-encoded, so every one is opened here instead.
   */
  private openEmbedded(part: OpenPart): void {
    const split = this.embed(this.placeholder(), part.node);
    this.decoding.add(split.done);
    part.embedded = split.input;
    if (ENCODED.has(part.node.encoding || '')) {
      part.decoder = this.decode(part, (chunk) => this.feedEmbedded(part, chunk), () => split.input.end());
      // A transfer encoding that cannot be decoded leaves the message unread: an error, not "nothing found".
      part.decoder.once('error', (err: Error) => split.abort(new Error(`embedded message could not be decoded: ${err.message}`)));
    }
  }

  /** A slot in result.texts that the texts of an embedded message replace at the end. */
  private placeholder(): TextSource {
    const slot: TextSource = { source: 'attachment', text: '' };
    this.result.texts.push(slot);
    return slot;
  }

  /**
   * Splits a message embedded at `node` (its bytes written to `input`) as a message of its
   * own; `done` settles when its texts are in `slot`, its attachments listed and its error,
   * if any, the message's.
   */
  private embed(slot: TextSource, node: MimeNode): ReturnType<SplitEmbedded> {
    const child = new PartCollector(this.limits, this.splitEmbedded, this.depthBase + depthOf(node) + 1, this.shared);
    const split = this.splitEmbedded!(child);
    this.shared.aborts.add(split.abort);
    const done = split.done
      .then(() => child.end())
      .then(
        (inner) => {
          this.embeddedTexts.set(slot, embeddedMessageTexts(inner));
          this.result.attachments.push(...inner.attachments);
          if (inner.error) this.result.error ??= `embedded message: ${inner.error}`;
        },
        (err: Error) => {
          this.result.error ??= err instanceof InspectLimitError ? err.message : `embedded message could not be read: ${err.message}`;
        },
      )
      .finally(() => this.shared.aborts.delete(split.abort));
    return { ...split, done };
  }

  /**
   * An S/MIME body (application/pkcs7-mime, a .p7m): kept whole (up to limits.maxSmimeBytes),
   * then, when the part ends, the MIME entity it signs is inspected in its place as an
   * embedded message is (cms.ts). One it cannot read (encrypted) leaves the message
   * unscanned. The promise of the whole is registered now, so that end() waits for it.
   */
  private openSmime(part: OpenPart): void {
    const slot = this.placeholder();
    const body = new SmimeBody(this.limits.maxSmimeBytes);
    let ended!: () => void;
    const whole = new Promise<void>((resolve) => (ended = resolve));
    part.smime = { body, ended };
    this.decoding.add(whole.then(() => this.openSmimeBody(body, slot, part.node)));
    if (ENCODED.has(part.node.encoding || '')) {
      part.decoder = this.decode(part, (chunk) => this.keepSmime(part, chunk), ended);
      // Bytes that cannot be decoded leave a body that cannot be read: unscanned, not a hang.
      part.decoder.once('error', ended);
    }
  }

  private keepSmime(part: OpenPart, chunk: Buffer): void {
    if (part.attachment) part.attachment.size += chunk.length;
    part.smime!.body.keep(chunk);
  }

  private async openSmimeBody(body: SmimeBody, slot: TextSource, node: MimeNode): Promise<void> {
    if (this.shared.aborted) return;
    const opened = body.open();
    if ('opaque' in opened) {
      this.shared.unreadable ??= opened.opaque;
      return;
    }
    if (!opened.content.length) return; // no content (certs-only): nothing to read
    const split = this.embed(slot, node);
    split.input.end(opened.content);
    await split.done;
  }

  private feedEmbedded(part: OpenPart, chunk: Buffer): void {
    if (part.attachment) part.attachment.size += chunk.length;
    part.embedded!.write(chunk);
  }

  /** Decoded bytes of a text part, within the text budget; text beyond it marks the scan incomplete. */
  private keep(part: OpenPart, chunk: Buffer): void {
    if (part.attachment) part.attachment.size += chunk.length;
    const text = part.text;
    if (!text) return;
    const budget = this.shared.textBytes;
    const kept = chunk.length > budget ? chunk.subarray(0, budget) : chunk;
    if (kept.length < chunk.length && hasContent(chunk.subarray(kept.length))) this.shared.textCut = true;
    if (!kept.length) return;
    this.shared.textBytes -= kept.length;
    text.chunks.push(kept);
    text.bytes += kept.length;
  }

  /** The part's text, decoded from its charset once, as the detectors read it (part-text.ts). */
  private finishText(part: OpenPart): void {
    const text = part.text;
    if (!text) return;
    const bytes = text.chunks.length === 1 ? text.chunks[0]! : Buffer.concat(text.chunks, text.bytes);
    text.slot.text = detectionText(bytes, part.node, isHtml(part.node.contentType || '', part.node.filename || ''));
  }

  private decode(part: OpenPart, onData: (chunk: Buffer) => void, onEnd: () => void): NodeJS.ReadWriteStream {
    const decoder = part.node.getDecoder() as NodeJS.ReadWriteStream;
    decoder.on('data', onData);
    const done = new Promise<void>((resolve) => {
      decoder.once('end', () => {
        onEnd();
        resolve();
      });
      // A broken encoding loses that part's text (its slot stays empty), not the inspection.
      decoder.once('error', () => resolve());
    });
    this.decoding.add(done);
    return decoder;
  }
}

/**
 * Which text a part gives the detectors, if any: by its declared type, or by its file
 * name when the type says nothing useful (application/octet-stream; name=notes.txt).
 */
function textKind(contentType: string, filename: string, isAttachment: boolean): TextSource['source'] | undefined {
  if (isAttachment) return TEXT_LIKE.test(contentType) || TEXT_NAME.test(filename) || HTML_NAME.test(filename) ? 'attachment' : undefined;
  if (contentType === 'text/html') return 'html';
  return contentType.startsWith('text/') || TEXT_LIKE.test(contentType) ? 'text' : undefined;
}

/** HTML is scanned as the text a reader sees, an HTML attachment as an HTML body is. */
function isHtml(contentType: string, filename: string): boolean {
  return contentType === 'text/html' || contentType === 'application/xhtml+xml' || HTML_NAME.test(filename);
}

/** An embedded message's header fields (who, what about), then its texts. */
function embeddedMessageTexts(inner: ParsedMessage): TextSource[] {
  const fields = Object.entries(inner.headers).flatMap(([key, values]) => values.map((v) => `${key}: ${v}`));
  const texts = inner.texts.filter((t) => t.source !== 'subject');
  return fields.length ? [{ source: 'subject', text: foldForDetection(fields.join('\n')) }, ...texts] : texts;
}

function textLimitMessage(maxTextBytes: number): string {
  return `message text exceeds the inspection limit of ${maxTextBytes} bytes (detectors.maxScanBytes): the rest cannot be inspected`;
}

/** Whether bytes left out hold more than line ends and blanks (the end of a part's last line). */
function hasContent(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 0x0d && b !== 0x0a && b !== 0x20 && b !== 0x09) return true;
  return false;
}

function depthOf(node: MimeNode): number {
  let depth = 0;
  for (let n: MimeNode | false = node; n && !n.root; n = n.parentNode) depth++;
  return depth;
}

/**
 * The message's own header fields, every one of them: the header block is bounded
 * already (limits.maxHeaderBytes), and a field left out is one a header rule cannot see.
 */
function readRootHeaders(node: MimeNode, result: ParsedMessage): void {
  const headers = node.headers;
  if (!headers) return;
  result.subject = decodeWords(headers.getFirst('subject'));
  result.from = decodeWords(headers.getFirst('from'));
  result.messageId = headers.getFirst('message-id') || undefined;
  for (const line of headers.getList()) {
    const raw = line.line.slice(line.line.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
    (result.headers[line.key] ??= []).push(decodeWords(raw));
  }
}

/** RFC 2047 encoded words decoded; a malformed one stays as it came. */
function decodeWords(text: string): string {
  try {
    return libmime.decodeWords(text);
  } catch {
    return text;
  }
}

function estimateDecoded(encodedBytes: number, encoding: string): number {
  return encoding.toLowerCase() === 'base64' ? Math.floor((encodedBytes * 3) / 4) : encodedBytes;
}
