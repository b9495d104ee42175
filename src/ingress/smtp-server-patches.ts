import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { applyDataFastPath } from './smtp-data-fast-path.js';
import { applyContinueFix } from './smtp-stream-continue.js';

/**
 * Six small, deliberate changes to smtp-server's connection and stream classes. Each is guarded: it
 * applies only to servers created with `posternPatches: true`, and applyPatches() throws
 * at start-up if the library no longer has the shape we patch, so an upgrade that
 * changes it fails loudly (and test/ingress/smtp-server-patches.test.ts fails too).
 *
 * 1. No greeting delay. smtp-server waits a fixed 100 ms before "220" to catch early
 *    talkers. Postern's clients are authorised relays (M365, Google), not strangers, and
 *    that wait caps a relay that gets a new connection per message at ~200 msgs/s.
 * 2. Explicit enhanced status codes. With ENHANCEDSTATUSCODES on, smtp-server derives
 *    the enhanced code from the reply number alone (550 → 5.1.1), which is wrong for a
 *    relay denial (5.7.1). A reply text that starts with its own "x.y.z" keeps it.
 * 3. Relay-test address forms. smtp-server silently strips source routes (@a,@b:user@c)
 *    and refuses quoted local parts containing "@" with a generic syntax error; Postern
 *    must see both to refuse them as relay attempts (550 5.7.1).
 * 4. AUTH before STARTTLS. Postern disables AUTH on a session until TLS is up (so it is
 *    not advertised), and smtp-server then answers it as an unknown command (500 5.5.2).
 *    A client that tries it is told what to do instead: 538 5.7.11 (RFC 4954 §6).
 *    And the 501s of an AUTH exchange get RFC 4954's enhanced codes (SASL_501).
 * 5. A native scan of DATA chunks for dots at line starts (src/ingress/smtp-data-fast-path.ts):
 *    what comes before the first one goes on without the library's byte-by-byte loop;
 *    from that line ending on, the library's own code decides.
 * 6. SMTPStream.continue() takes its callback before calling it, so a second
 *    transaction parsed during that call keeps its own (src/ingress/smtp-stream-continue.ts).
 */

export const POSTERN_PATCHES = 'posternPatches';

type Conn = {
  _server: { options: Record<string, unknown> };
  _setListeners(cb: () => void): void;
  connectionReady(next?: () => void): void;
  send(code: number, data?: string | string[] | null, context?: string | false): void;
  _parseAddressCommand(name: string, command: Buffer | string): unknown;
};

const ENHANCED_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;
/**
 * RFC 4954 §4 codes for the 501s smtp-server's AUTH exchange sends (it derives 5.5.4
 * from the number): a client's "*" cancels (5.7.0); a response that does not decode
 * (not base64, or a PLAIN token without its two NULs) is 5.5.2.
 */
const SASL_501 = new Map([
  ['Authentication aborted', '5.7.0'],
  ['Error: invalid userdata', '5.5.2'],
]);
let applied = false;

export function applyPatches(): void {
  if (applied) return;
  applyDataFastPath(POSTERN_PATCHES);
  applyContinueFix();
  const proto = SMTPConnection.prototype as unknown as Conn & Record<string, unknown>;
  const originalInit = proto.init as unknown as (this: Conn) => void;
  const originalSend = proto.send;
  const originalParse = proto._parseAddressCommand;
  const initSource = String(originalInit);
  if (
    typeof originalInit !== 'function' ||
    typeof proto._setListeners !== 'function' ||
    typeof proto.connectionReady !== 'function' ||
    !/setTimeout\(\s*\(\)\s*=>\s*this\.connectionReady\(\)/.test(initSource) ||
    !/maxClients/.test(initSource) ||
    typeof originalSend !== 'function' ||
    typeof originalParse !== 'function'
  ) {
    throw new Error('smtp-server changed: SMTPConnection.init/send/_parseAddressCommand no longer look as Postern patches them (see src/ingress/smtp-server-patches.ts)');
  }

  proto.init = function (this: Conn & { connections?: unknown }) {
    if (!this._server.options[POSTERN_PATCHES]) return originalInit.call(this);
    this._setListeners(() => {
      const server = this._server as unknown as { options: { maxClients?: number }; connections: Set<unknown> };
      if (server.options.maxClients && server.connections.size > server.options.maxClients) {
        return this.send(421, '4.3.2 Too many connected clients, try again in a moment');
      }
      this.connectionReady();
    });
  };

  proto.send = function (this: Conn & { secure?: boolean }, code: number, data?: string | string[] | null, context?: string | false) {
    if (!this._server.options[POSTERN_PATCHES]) return originalSend.call(this, code, data, context);
    if (code === 500 && context === 'AUTH' && !this.secure && !(this._server.options.disabledCommands as string[] | undefined)?.includes('AUTH')) {
      return originalSend.call(this, 538, '5.7.11 Encryption required for authentication: issue STARTTLS first', false);
    }
    if (typeof data === 'string' && ENHANCED_PREFIX.test(data)) return originalSend.call(this, code, data, false);
    const sasl = code === 501 && typeof data === 'string' ? SASL_501.get(data) : undefined;
    if (sasl) return originalSend.call(this, code, `${sasl} ${data}`, false);
    return originalSend.call(this, code, data, context);
  };

  proto._parseAddressCommand = function (this: Conn, name: string, command: Buffer | string) {
    const parsed = originalParse.call(this, name, command);
    if (!this._server.options[POSTERN_PATCHES] || String(name).toLowerCase() !== 'rcpt to') return parsed;
    const raw = String(command);
    const bracket = /<([^<>]*)>/.exec(raw)?.[1] ?? '';
    const relayForm = bracket.startsWith('@') ? 'source-route' : /^".*@.*"@/.test(bracket) ? 'quoted-at' : undefined;
    if (!relayForm) return parsed;
    const args = parsed && typeof parsed === 'object' ? (parsed as { args: unknown }).args : false;
    return { address: bracket, args, relayForm };
  };
  applied = true;
}

/** The relay-test form flagged by patch 3, if any. */
export function relayFormOf(address: object): string | undefined {
  return (address as { relayForm?: string }).relayForm;
}
