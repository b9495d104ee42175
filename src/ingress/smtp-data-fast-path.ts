import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

/**
 * Patch 5 of src/ingress/smtp-server-patches.ts: a native scan for the DATA phase.
 *
 * smtp-server looks for "\n." (an escape dot or the end of DATA) with a JavaScript loop
 * over every byte of the message, which was the largest single cost of taking a 100 KB
 * message in (a fifth of a millisecond each, on the bench machine). This patch finds the
 * first "\n." with Buffer.indexOf (native) instead:
 * - none in the chunk: it does what the library's own code does when its loop finds
 *   nothing (hold back the last four bytes, since the end of DATA may straddle chunks;
 *   count and pass on the rest; wait for the consumer's drain);
 * - one: the bytes before its line ending are payload and go on at once, and the
 *   library's code gets the rest, from that line ending on, so it sees the same bytes
 *   around the dot and decides as it would on the whole chunk (escape dot, terminator,
 *   the smuggling guards). A client that sends a whole message in a few large writes
 *   (as smtp-source, Microsoft 365 and Postfix do) has its last chunk cut this way.
 * The start of DATA with a leading dot, and chunks too short to judge, go to the
 * library's code whole.
 *
 * It applies only to parsers of servers created with `posternPatches: true` (marked as
 * they are created); applyDataFastPath() throws if the library's shape changed.
 */

const FAST = Symbol('postern.fastData');
/** A dot at the start of a line: an escape dot or (followed by CRLF) the end of DATA. */
const LF_DOT = Buffer.from('\n.');
/** The library keeps this many trailing bytes of a chunk back for the next one. */
const HELD_BACK = 4;
const DOT = 0x2e;

type Done = (err?: Error) => void;
type Stream = {
  [FAST]?: boolean;
  _atDataStart: boolean;
  _lastBytes: Buffer | false;
  _dataStream: NodeJS.WritableStream & { writable: boolean; destroyed: boolean; writableNeedDrain: boolean };
  _countDataBytes(len: number): void;
  _feedDataStream(chunk: Buffer, done: Done): void;
};

let applied = false;

/** Whether a parser belongs to a server created with Postern's patches on. */
export function isPosternParser(parser: object): boolean {
  return (parser as Stream)[FAST] === true;
}

/** How often each shortcut ran (tests check that they run at all). */
export const dataFastPathStats = { chunks: 0, splits: 0 };

export function applyDataFastPath(optionName: string): void {
  if (applied) return;
  const stream = SMTPStream.prototype as unknown as Stream;
  const conn = SMTPConnection.prototype as unknown as { _createParser(): Stream; _server: { options: Record<string, unknown> } };
  const originalFeed = stream._feedDataStream;
  const originalCreate = conn._createParser;
  const feedSource = String(originalFeed);
  if (
    typeof originalFeed !== 'function' ||
    typeof originalCreate !== 'function' ||
    typeof stream._countDataBytes !== 'function' ||
    !/_lastBytes/.test(feedSource) ||
    !/_atDataStart/.test(feedSource) ||
    !/chunk\.length - this\._lastBytes\.length/.test(feedSource) ||
    !/_lastBytes = chunk\.subarray\(chunk\.length - 4\)/.test(feedSource)
  ) {
    throw new Error('smtp-server changed: SMTPStream._feedDataStream / SMTPConnection._createParser no longer look as Postern patches them (see src/ingress/smtp-data-fast-path.ts)');
  }

  conn._createParser = function (this: typeof conn) {
    const parser = originalCreate.call(this);
    if (this._server.options[optionName]) parser[FAST] = true;
    return parser;
  };

  stream._feedDataStream = function (this: Stream, chunk: Buffer, done: Done) {
    if (!this[FAST]) return originalFeed.call(this, chunk, done);
    // A write that did not wait for drain (the split below, or the library's own write
    // before it strips an escape dot) may have left the consumer over its mark: wait here
    // before taking more. Without this, a client whose every segment ends in a stuffed
    // dot ("\r\n..") was read on while the spool fell behind, buffering up to the size
    // limit per connection in memory.
    const consumer = this._dataStream;
    if (consumer.writable && !consumer.destroyed && consumer.writableNeedDrain) {
      return whenDrained(consumer, () => stream._feedDataStream.call(this, chunk, done));
    }
    const held = this._lastBytes;
    const data = held && held.length ? Buffer.concat([held, chunk], held.length + chunk.length) : chunk;
    // At the start of DATA the library first looks for a leading "." (the end of an empty
    // message, or an escape dot): a chunk that starts with one, or is too short to tell, is
    // the library's. Any other first chunk goes on as the library's loop would take it.
    if (this._atDataStart && (data.length < 3 || data[0] === DOT)) return originalFeed.call(this, chunk, done);
    const lfDot = data.indexOf(LF_DOT);
    if (lfDot === -1) {
      if (data.length <= HELD_BACK) return originalFeed.call(this, chunk, done);
      dataFastPathStats.chunks++;
      return pass(this, data, done);
    }
    // A dot at a line start: everything before the line ending ahead of it is payload. It
    // goes on now, and the library gets the rest from that line ending on: the dot is then
    // at index 2, where its loop starts, with the same two bytes before it, so it decides
    // as it would on the whole chunk — and if the rest is too short to decide, it holds it
    // back whole, dot still at index 2 when more comes. A dot at index 1 (which the
    // library's loop does not look at) leaves nothing to cut: the library takes the chunk.
    const cut = lfDot - 1;
    if (cut < 1) return originalFeed.call(this, chunk, done);
    dataFastPathStats.splits++;
    this._lastBytes = false;
    const payload = data.subarray(0, cut);
    this._countDataBytes(payload.length);
    // As the library does before it strips an escape dot: written without waiting for
    // drain; the library's own write of the rest waits.
    if (this._dataStream.writable) this._dataStream.write(payload);
    return originalFeed.call(this, data.subarray(cut), done);
  };
  applied = true;
}

/** What the library does with a chunk in which its loop found nothing: hold back the
 * last four bytes (the end of DATA may straddle chunks), count and pass on the rest,
 * and wait for the consumer's drain. */
function pass(parser: Stream, data: Buffer, done: Done): void {
  parser._lastBytes = data.subarray(data.length - HELD_BACK);
  const out = data.subarray(0, data.length - HELD_BACK);
  parser._countDataBytes(out.length);
  const consumer = parser._dataStream;
  if (!consumer.writable || consumer.write(out) || consumer.destroyed) return done();
  whenDrained(consumer, () => done());
}

/** Runs `then` once the consumer drains, or closes: one the application destroys never drains. */
function whenDrained(consumer: Stream['_dataStream'], then: () => void): void {
  const resume = () => {
    consumer.removeListener('drain', resume);
    consumer.removeListener('close', resume);
    then();
  };
  consumer.once('drain', resume);
  consumer.once('close', resume);
}
