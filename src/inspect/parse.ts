import { PassThrough, Readable } from 'node:stream';
import { MimeNode, Splitter } from '@zone-eu/mailsplit';
import { headerEnd } from '../protect/header-end.js';
import { headerBreakStream, withHeaderBreak } from './header-break.js';
import { DEFAULT_INSPECT_LIMITS, InspectLimitError, InspectTimeoutError, PartCollector, type InspectLimits, type ParsedMessage, type SplitEmbedded } from './parts.js';

export { DEFAULT_INSPECT_LIMITS, InspectLimitError, InspectTimeoutError, type InspectLimits, type ParsedMessage, type TextSource } from './parts.js';

/**
 * Parses a message once with @zone-eu/mailsplit (mailparser's own splitter), streaming:
 * headers of the message, decoded text of text and HTML parts and of text-like
 * attachments (bounded, for the detectors), attachment names, types and sizes. Nesting,
 * part count, header size and time are limited; going over a limit ends the parse with
 * `error` set instead of hanging or exhausting memory.
 *
 * A message held in memory whose root is not multipart (nor an embedded message) has one
 * part: its header block is parsed by mailsplit's own MimeNode and the rest is the body,
 * handed over in one piece. That is what the splitter would emit, without its
 * byte-by-byte walk over the body (measured: most of the cost of inspecting a 100 KB
 * single-part message).
 *
 * The header section of the message, and of each embedded one, ends where a reader's
 * ends (header-break.ts): body lines sent without the blank line before them are text.
 */
export async function parseMessage(body: Readable | Buffer, limits: InspectLimits = DEFAULT_INSPECT_LIMITS): Promise<ParsedMessage> {
  if (Buffer.isBuffer(body)) {
    const message = withHeaderBreak(body);
    const single = singlePart(message, limits);
    if (single) return single;
    return splitStream(message, limits);
  }
  return splitStream(body, limits);
}

function splitStream(body: Readable | Buffer, limits: InspectLimits): Promise<ParsedMessage> {
  const collector = new PartCollector(limits, embeddedSplitter(limits));
  const source = Buffer.isBuffer(body) ? Readable.from([body], { objectMode: false }) : body;
  const split = splitInto(collector, source, limits);
  // pipe() does not pass on a source's error: without this, a body that fails while it
  // is read (the Redis queue's body stream when Redis goes away) is an unhandled 'error'
  // event, and that ends the process. A body that cannot be read says nothing about the
  // message: the caller gets the error (the attempt is deferred), not an "unreadable MIME"
  // result that the policy could bounce.
  let readError: Error | undefined;
  source.on('error', (err: Error) => {
    readError ??= err;
    split.fail(err);
  });
  const fail = (err: Error) => {
    split.fail(err);
    if (!Buffer.isBuffer(body)) body.destroy();
  };
  return finish(collector, split.done, limits, fail).then((parsed) => {
    if (readError) throw readError;
    return parsed;
  });
}

/**
 * Splits `source` into the collector's parts. Embedded messages are left to the
 * collector (ignoreEmbedded): the splitter would open only those declared inline and not
 * transfer-encoded, and none of message/global.
 */
function splitInto(collector: PartCollector, source: Readable, limits: InspectLimits): { done: Promise<void>; fail: (err: Error) => void } {
  const splitter = new Splitter({ maxHeadSize: limits.maxHeaderBytes, ignoreEmbedded: true });
  const events = splitter as unknown as NodeJS.EventEmitter;
  const headed = headerBreakStream(limits.maxHeaderBytes);
  let failed: Error | undefined;
  const fail = (err: Error) => {
    if (failed) return; // collector.abort reaches every split of the message, this one too
    failed = err;
    source.unpipe(headed);
    headed.unpipe(splitter);
    headed.destroy();
    splitter.destroy(err);
    collector.abort(err);
  };
  const done = new Promise<void>((resolve, reject) => {
    events.on('data', (data: { type: string; value?: Buffer } & MimeNode) => {
      if (failed) return;
      try {
        if (data.type === 'node') collector.node(data as unknown as MimeNode);
        else if (data.type === 'body' && data.value) collector.body(data.value);
      } catch (err) {
        fail(err as Error);
      }
    });
    events.once('end', () => resolve());
    events.once('error', reject);
    events.once('close', () => {
      if (failed) reject(failed);
    });
  });
  source.pipe(headed).pipe(splitter);
  return { done, fail };
}

/** How a collector opens the messages embedded in this one: a split of their own, same limits. */
function embeddedSplitter(limits: InspectLimits): SplitEmbedded {
  return (collector) => {
    const input = new PassThrough();
    const { done, fail } = splitInto(collector, input, limits);
    return { input, done, abort: fail };
  };
}

/** The one-part case (see parseMessage), or undefined when the splitter must do it. */
function singlePart(message: Buffer, limits: InspectLimits): Promise<ParsedMessage> | undefined {
  const end = headerEnd(message);
  // No blank line (all header, withHeaderBreak has put any other one in): the splitter decides.
  if (end.body === end.fields) return undefined;
  const bodyStart = end.body;
  if (headerBlockCost(message, bodyStart) > limits.maxHeaderBytes) return undefined;
  const node = new MimeNode(false, { maxHeadSize: limits.maxHeaderBytes });
  node.addHeaderChunk(message.subarray(0, bodyStart));
  node.parseHeaders();
  if (node.multipart) return undefined;
  const collector = new PartCollector(limits, embeddedSplitter(limits));
  collector.node(node);
  if (bodyStart < message.length) collector.body(message.subarray(bodyStart));
  return finish(collector, Promise.resolve(), limits, () => undefined);
}

async function finish(collector: PartCollector, split: Promise<void>, limits: InspectLimits, fail: (err: Error) => void): Promise<ParsedMessage> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new InspectTimeoutError(`inspection took longer than ${limits.timeoutMs} ms`);
      fail(err);
      reject(err);
    }, limits.timeoutMs);
  });
  try {
    await Promise.race([split.then(() => collector.end()), timeout]);
    return collector.result;
  } catch (err) {
    collector.result.error = err instanceof InspectLimitError ? err.message : `unreadable MIME structure: ${(err as Error).message}`;
    if (err instanceof InspectTimeoutError) collector.result.timedOut = true;
    return collector.result;
  } finally {
    clearTimeout(timer);
  }
}

/** The header size as the splitter counts it against maxHeadSize (MimeNode#headerCost). */
function headerBlockCost(message: Buffer, end: number): number {
  const MIN_LINE_COST = 64;
  let cost = 0;
  for (let start = 0; start < end; ) {
    const next = message.indexOf(0x0a, start) + 1;
    const length = next - start;
    cost += next === end ? length : Math.max(length, MIN_LINE_COST);
    start = next;
  }
  return cost;
}
