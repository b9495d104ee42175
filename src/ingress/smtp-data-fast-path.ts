import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

/**
 * Patch 5 of src/ingress/smtp-server-patches.ts: a native scan for the DATA phase.
 *
 * smtp-server looks for "\n." (an escape dot or the end of DATA) with a JavaScript loop
 * over every byte of the message, which was the largest single cost of taking a 100 KB
 * message in (a fifth of a millisecond each, on the bench machine). Most chunks of a
 * message hold no line that starts with a dot at all. For those chunks only, this patch
 * asks Buffer.indexOf (native) instead and does what the library's own code does when
 * its loop finds nothing: hold back the last four bytes (the end of DATA may straddle
 * chunks), count and pass on the rest, wait for the consumer's drain. Every other chunk
 * (a dot at a line start, the start of DATA, a chunk too short to judge) goes to the
 * library's code unchanged, so escape dots, the terminator and the smuggling guards
 * stay the library's.
 *
 * It applies only to parsers of servers created with `posternPatches: true` (marked as
 * they are created); applyDataFastPath() throws if the library's shape changed.
 */

const FAST = Symbol('postern.fastData');
/** A dot at the start of a line: an escape dot or (followed by CRLF) the end of DATA. */
const LF_DOT = Buffer.from('\n.');
/** The library keeps this many trailing bytes of a chunk back for the next one. */
const HELD_BACK = 4;

type Done = (err?: Error) => void;
type Stream = {
  [FAST]?: boolean;
  _atDataStart: boolean;
  _lastBytes: Buffer | false;
  _dataStream: NodeJS.WritableStream & { writable: boolean; destroyed: boolean };
  _countDataBytes(len: number): void;
  _feedDataStream(chunk: Buffer, done: Done): void;
};

let applied = false;

/** Chunks the fast path took (tests check that it runs at all). */
export const dataFastPathStats = { chunks: 0 };

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
    if (!this[FAST] || this._atDataStart) return originalFeed.call(this, chunk, done);
    const held = this._lastBytes;
    const data = held && held.length ? Buffer.concat([held, chunk], held.length + chunk.length) : chunk;
    // Short input, or any dot at a line start: the library's own code decides.
    if (data.length <= HELD_BACK || data.indexOf(LF_DOT) !== -1) return originalFeed.call(this, chunk, done);
    dataFastPathStats.chunks++;
    this._lastBytes = data.subarray(data.length - HELD_BACK);
    const out = data.subarray(0, data.length - HELD_BACK);
    this._countDataBytes(out.length);
    const consumer = this._dataStream;
    if (!consumer.writable || consumer.write(out) || consumer.destroyed) return done();
    // A consumer the application destroys never drains, it only closes.
    const resume = () => {
      consumer.removeListener('drain', resume);
      consumer.removeListener('close', resume);
      done();
    };
    consumer.once('drain', resume);
    consumer.once('close', resume);
  };
  applied = true;
}
