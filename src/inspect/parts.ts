import type { MimeNode } from '@zone-eu/mailsplit';
import libmime from 'libmime';
import type { AttachmentFact } from '../types.js';
import { htmlToPlainText } from './html-text.js';

export interface InspectLimits {
  /** Deepest multipart nesting accepted. */
  maxDepth: number;
  maxParts: number;
  /** Decoded text kept for the detectors, all parts together. */
  maxTextBytes: number;
  /** Largest header block of one MIME part. */
  maxHeaderBytes: number;
  timeoutMs: number;
}

export const DEFAULT_INSPECT_LIMITS: InspectLimits = {
  maxDepth: 20,
  maxParts: 500,
  maxTextBytes: 2 * 1024 * 1024,
  maxHeaderBytes: 256 * 1024,
  timeoutMs: 10_000,
};

export interface TextSource {
  source: 'subject' | 'text' | 'html' | 'attachment';
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
}

/** An inspection that could not finish within the limits (a MIME bomb, say). */
export class InspectLimitError extends Error {}

const MAX_HEADER_FIELDS = 200;
const MAX_HEADER_VALUE = 2048;
const TEXT_LIKE = /^(text\/|application\/(json|xml|csv|x-csv|rtf|x-yaml|yaml))/;

interface OpenPart {
  node: MimeNode;
  attachment?: AttachmentFact | undefined;
  /** Kept text of a text part: its decoded bytes, then its place in result.texts. */
  text?: { chunks: Buffer[]; bytes: number; slot: TextSource } | undefined;
  /** base64 or quoted-printable; other encodings are the bytes themselves. */
  decoder?: NodeJS.ReadWriteStream | undefined;
}

/** The transfer encodings that need decoding (mailsplit passes any other through as is). */
const ENCODED = new Set(['base64', 'quoted-printable']);

/**
 * What inspection keeps of each MIME part, whichever way the message was split: the
 * root's headers, the decoded text of text, HTML and text-like attachment parts (within
 * the text budget), and attachment names, types and sizes. Limits on part count and
 * depth throw InspectLimitError.
 */
export class PartCollector {
  readonly result: ParsedMessage = { subject: '', from: '', headers: {}, texts: [], attachments: [], parts: 0 };
  private textBudget: number;
  private current: OpenPart | undefined;
  private readonly decoding = new Set<Promise<void>>();

  constructor(private readonly limits: InspectLimits) {
    this.textBudget = limits.maxTextBytes;
  }

  /** A new MIME node (headers parsed): ends the previous part. */
  node(node: MimeNode): void {
    this.endPart();
    const result = this.result;
    result.parts++;
    if (result.parts > this.limits.maxParts) throw new InspectLimitError(`more than ${this.limits.maxParts} MIME parts`);
    if (depthOf(node) > this.limits.maxDepth) throw new InspectLimitError(`MIME parts nested deeper than ${this.limits.maxDepth} levels`);
    if (node.root) readRootHeaders(node, result);
    if (node.multipart) return;
    const contentType = node.contentType || 'text/plain';
    const isAttachment = node.disposition === 'attachment' || Boolean(node.filename) || node.rfc822;
    const attachment = isAttachment ? { filename: node.filename || undefined, contentType, size: 0 } : undefined;
    if (attachment) result.attachments.push(attachment);
    const kind: TextSource['source'] | undefined = attachment ? (TEXT_LIKE.test(contentType) ? 'attachment' : undefined) : contentType === 'text/html' ? 'html' : contentType.startsWith('text/') ? 'text' : undefined;
    const part: OpenPart = { node, attachment };
    this.current = part;
    if (kind && this.textBudget > 0) {
      // The slot keeps the texts in the message's order, whenever their decoding ends.
      part.text = { chunks: [], bytes: 0, slot: { source: kind, text: '' } };
      result.texts.push(part.text.slot);
      if (ENCODED.has(node.encoding || '')) part.decoder = this.decode(part);
    }
  }

  /** Body bytes of the current part, still transfer-encoded. */
  body(chunk: Buffer): void {
    const part = this.current;
    if (!part) return;
    if (part.decoder) part.decoder.write(chunk);
    else if (part.text) this.keep(part, chunk);
    else if (part.attachment) part.attachment.size += estimateDecoded(chunk.length, part.node.encoding || '');
  }

  /** The message ended: waits for the decoders of text parts to finish. */
  async end(): Promise<ParsedMessage> {
    this.endPart();
    await Promise.all(this.decoding);
    if (this.result.subject) this.result.texts.unshift({ source: 'subject', text: this.result.subject });
    return this.result;
  }

  private endPart(): void {
    const part = this.current;
    this.current = undefined;
    if (part?.decoder) part.decoder.end();
    else if (part?.text) this.finishText(part);
  }

  /** Decoded bytes of a text part, within the text budget. */
  private keep(part: OpenPart, chunk: Buffer): void {
    if (part.attachment) part.attachment.size += chunk.length;
    const text = part.text;
    if (!text || this.textBudget <= 0) return;
    const kept = chunk.length > this.textBudget ? chunk.subarray(0, this.textBudget) : chunk;
    this.textBudget -= kept.length;
    text.chunks.push(kept);
    text.bytes += kept.length;
  }

  /** The part's text, decoded from its charset once (HTML: its plain text). */
  private finishText(part: OpenPart): void {
    const text = part.text;
    if (!text) return;
    const bytes = text.chunks.length === 1 ? text.chunks[0]! : Buffer.concat(text.chunks, text.bytes);
    const decoded = decodeCharset(bytes, part.node.charset || 'utf-8');
    text.slot.text = text.slot.source === 'html' ? htmlToPlainText(decoded) : decoded;
  }

  private decode(part: OpenPart): NodeJS.ReadWriteStream {
    const decoder = part.node.getDecoder() as NodeJS.ReadWriteStream;
    decoder.on('data', (chunk: Buffer) => this.keep(part, chunk));
    const done = new Promise<void>((resolve) => {
      decoder.once('end', () => {
        this.finishText(part);
        resolve();
      });
      // A broken encoding loses that part's text (its slot stays empty), not the inspection.
      decoder.once('error', () => resolve());
    });
    this.decoding.add(done);
    return decoder;
  }
}

function depthOf(node: MimeNode): number {
  let depth = 0;
  for (let n: MimeNode | false = node; n && !n.root; n = n.parentNode) depth++;
  return depth;
}

function readRootHeaders(node: MimeNode, result: ParsedMessage): void {
  if (result.subject || Object.keys(result.headers).length) return; // an embedded message's root
  const headers = node.headers;
  if (!headers) return;
  result.subject = decodeWords(headers.getFirst('subject'));
  result.from = decodeWords(headers.getFirst('from'));
  result.messageId = headers.getFirst('message-id') || undefined;
  let fields = 0;
  for (const line of headers.getList()) {
    if (++fields > MAX_HEADER_FIELDS) break;
    const raw = line.line.slice(line.line.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
    (result.headers[line.key] ??= []).push(decodeWords(raw).slice(0, MAX_HEADER_VALUE));
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

function decodeCharset(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset.toLowerCase(), { fatal: false }).decode(bytes);
  } catch {
    return bytes.toString('latin1'); // unknown charset: still scan the ASCII in it
  }
}

function estimateDecoded(encodedBytes: number, encoding: string): number {
  return encoding.toLowerCase() === 'base64' ? Math.floor((encodedBytes * 3) / 4) : encodedBytes;
}
