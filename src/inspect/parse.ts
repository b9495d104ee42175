import { Readable } from 'node:stream';
import { Splitter, type MimeNode } from '@zone-eu/mailsplit';
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

/**
 * Parses a message once, streaming, with @zone-eu/mailsplit (mailparser's own
 * splitter): headers of the message, decoded text of text and HTML parts and of text-like
 * attachments (bounded, for the detectors), attachment names, types and sizes. Nesting,
 * part count, header size and time are limited; going over a limit ends the parse with
 * `error` set instead of hanging or exhausting memory.
 */
export async function parseMessage(body: Readable | Buffer, limits: InspectLimits = DEFAULT_INSPECT_LIMITS): Promise<ParsedMessage> {
  const result: ParsedMessage = { subject: '', from: '', headers: {}, texts: [], attachments: [], parts: 0 };
  const splitter = new Splitter({ maxHeadSize: limits.maxHeaderBytes });
  const events = splitter as unknown as NodeJS.EventEmitter;
  let textBudget = limits.maxTextBytes;
  let current: { node: MimeNode; attachment?: AttachmentFact; decoder?: NodeJS.ReadWriteStream; chunks: Buffer[]; bytes: number; kind: TextSource['source'] | undefined } | undefined;

  const finishPart = () => {
    if (!current) return;
    const part = current;
    current = undefined;
    if (part.decoder) part.decoder.end();
  };

  const fail = (message: string) => {
    const err = new InspectLimitError(message);
    source.unpipe(splitter);
    splitter.destroy(err);
    if (!Buffer.isBuffer(body)) body.destroy();
  };

  const source = Buffer.isBuffer(body) ? Readable.from([body], { objectMode: false }) : body;
  const done = new Promise<void>((resolve, reject) => {
    events.on('data', (data: { type: string; value?: Buffer; getDecoder?: () => NodeJS.ReadWriteStream } & MimeNode) => {
      if (data.type === 'node') {
        finishPart();
        const node = data as unknown as MimeNode;
        result.parts++;
        if (result.parts > limits.maxParts) return fail(`more than ${limits.maxParts} MIME parts`);
        if (depthOf(node) > limits.maxDepth) return fail(`MIME parts nested deeper than ${limits.maxDepth} levels`);
        if (node.root) readRootHeaders(node, result);
        if (node.multipart) return;
        const contentType = node.contentType || 'text/plain';
        const isAttachment = node.disposition === 'attachment' || Boolean(node.filename) || node.rfc822;
        const attachment = isAttachment ? { filename: node.filename || undefined, contentType, size: 0 } : undefined;
        if (attachment) result.attachments.push(attachment);
        const kind: TextSource['source'] | undefined = attachment
          ? TEXT_LIKE.test(contentType)
            ? 'attachment'
            : undefined
          : contentType === 'text/html'
            ? 'html'
            : contentType.startsWith('text/')
              ? 'text'
              : undefined;
        current = { node, attachment, chunks: [], bytes: 0, kind };
        if (kind && textBudget > 0) {
          const decoder = (data.getDecoder as () => NodeJS.ReadWriteStream).call(data);
          const part = current;
          decoder.on('data', (chunk: Buffer) => {
            if (part.attachment) part.attachment.size += chunk.length;
            if (textBudget <= 0) return;
            const keep = chunk.length > textBudget ? chunk.subarray(0, textBudget) : chunk;
            textBudget -= keep.length;
            part.chunks.push(keep);
            part.bytes += keep.length;
          });
          decoder.on('end', () => {
            const text = decodeCharset(Buffer.concat(part.chunks, part.bytes), part.node.charset || 'utf-8');
            result.texts.push({ source: kind, text: kind === 'html' ? htmlToPlainText(text) : text });
          });
          decoder.on('error', () => undefined);
          part.decoder = decoder;
        }
        return;
      }
      if (data.type === 'body' && current && data.value) {
        if (current.decoder) current.decoder.write(data.value);
        else if (current.attachment) current.attachment.size += estimateDecoded(data.value.length, current.node.encoding || '');
      }
    });
    events.once('end', () => {
      finishPart();
      // Decoders end asynchronously; one turn lets their 'end' handlers run.
      setImmediate(resolve);
    });
    events.once('error', reject);
  });
  source.pipe(splitter);

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      fail(`inspection took longer than ${limits.timeoutMs} ms`);
      reject(new InspectLimitError(`inspection took longer than ${limits.timeoutMs} ms`));
    }, limits.timeoutMs);
  });
  try {
    await Promise.race([done, timeout]);
  } catch (err) {
    result.error = err instanceof InspectLimitError ? err.message : `unreadable MIME structure: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
  if (result.subject) result.texts.unshift({ source: 'subject', text: result.subject });
  return result;
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
