/**
 * Every reply Postern sends to a client carries an explicit code and RFC 3463 enhanced
 * status (invariant 3); smtp-server's patched send() keeps the "x.y.z" we put first.
 */
export class SmtpReplyError extends Error {
  readonly responseCode: number;
  constructor(code: number, enhanced: string, text: string) {
    super(`${enhanced} ${text}`);
    this.responseCode = code;
    this.name = 'SmtpReplyError';
  }
}

export const reply = (code: number, enhanced: string, text: string) => new SmtpReplyError(code, enhanced, text);
