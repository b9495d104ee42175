import SMTPConnection from 'nodemailer/lib/smtp-connection';

/**
 * nodemailer puts SMTPUTF8 on MAIL FROM only for a non-ASCII address. RFC 6531 §3.4 wants
 * it whenever the message needs it, UTF-8 header fields included (see smtputf8.ts for when
 * Postern sends it). This adds it to the MAIL FROM of an envelope marked with
 * withSmtpUtf8(), when the server offers the extension; nodemailer has no option for it.
 *
 * The MAIL FROM line is written by _setEnvelope, synchronously: for that call only, the
 * connection's _sendCommand gets the parameter added to the MAIL FROM line, and is then
 * the prototype's again. Guarded like the other patches: if _setEnvelope no longer builds
 * the line this way, applying throws at start-up.
 */

const SMTPUTF8 = Symbol('postern.smtputf8');

type Envelope = Record<string | symbol, unknown>;
type SendCommand = (str: string, logStr?: string) => void;
interface Conn {
  _supportedExtensions: string[];
  _sendCommand: SendCommand;
  _setEnvelope(envelope: Envelope, callback: unknown): unknown;
}

let applied = false;

/** The envelope, marked to go out with SMTPUTF8 when the server offers it. */
export function withSmtpUtf8<T extends object>(envelope: T): T {
  (envelope as Envelope)[SMTPUTF8] = true;
  return envelope;
}

export function applySmtpUtf8Param(): void {
  if (applied) return;
  const proto = SMTPConnection.prototype as unknown as Conn;
  const original = proto._setEnvelope;
  const source = String(original);
  if (typeof original !== 'function' || typeof proto._sendCommand !== 'function' || !/'MAIL FROM:<'/.test(source) || !/_sendCommand\(mailFrom\)/.test(source) || !/args\.push\('SMTPUTF8'\)/.test(source)) {
    throw new Error('nodemailer changed: SMTPConnection._setEnvelope no longer looks as Postern patches it (see src/deliver/smtputf8-param.ts)');
  }
  proto._setEnvelope = function (this: Conn, envelope: Envelope, callback: unknown) {
    if (!envelope?.[SMTPUTF8] || !this._supportedExtensions.includes('SMTPUTF8')) return original.call(this, envelope, callback);
    const send = proto._sendCommand;
    this._sendCommand = function (this: Conn, str: string, logStr?: string) {
      return send.call(this, typeof str === 'string' && str.startsWith('MAIL FROM:<') ? withParam(str) : str, logStr);
    };
    try {
      return original.call(this, envelope, callback);
    } finally {
      delete (this as Partial<Conn>)._sendCommand;
    }
  };
  applied = true;
}

/**
 * "MAIL FROM:<a@b> SIZE=1" → "MAIL FROM:<a@b> SMTPUTF8 SIZE=1", once. The address has no
 * ">" (nodemailer refuses one), so the first ">" closes it.
 */
export function withParam(mailFrom: string): string {
  const close = mailFrom.indexOf('>');
  const params = mailFrom.slice(close + 1).split(' ').filter(Boolean);
  if (close === -1 || params.some((p) => p.toUpperCase() === 'SMTPUTF8')) return mailFrom;
  return [mailFrom.slice(0, close + 1), 'SMTPUTF8', ...params].join(' ');
}
