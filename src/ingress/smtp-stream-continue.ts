import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { isPosternParser } from './smtp-data-fast-path.js';

/**
 * Patch 6 of src/ingress/smtp-server-patches.ts: SMTPStream.continue() clears the
 * callback it holds only after calling it. When that call parses the next commands at
 * once (a client that sends a second whole transaction without waiting for 354, with
 * Postern's handlers answering synchronously), the callback the next DATA set is wiped:
 * that message is queued, and the session then answers nothing more until the command
 * timeout. Here the callback is taken before it is called.
 */

type Stream = { _continueCallback: (() => void) | boolean; continue(): void };

let applied = false;

export function applyContinueFix(): void {
  if (applied) return;
  const proto = SMTPStream.prototype as unknown as Stream;
  const original = proto.continue;
  const source = String(original);
  if (typeof original !== 'function' || !/_continueCallback\(\)/.test(source) || !/_continueCallback = false/.test(source) || !/_continueCallback = true/.test(source)) {
    throw new Error('smtp-server changed: SMTPStream.continue no longer looks as Postern patches it (see src/ingress/smtp-stream-continue.ts)');
  }
  proto.continue = function (this: Stream) {
    if (!isPosternParser(this)) return original.call(this);
    const callback = this._continueCallback;
    if (typeof callback === 'function') {
      this._continueCallback = false;
      callback();
    } else {
      // Called before the stream ended: the end runs the next step at once.
      this._continueCallback = true;
    }
  };
  applied = true;
}
