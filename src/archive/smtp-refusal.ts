/** What nodemailer puts on an SMTP error (smtp-connection's _formatError). */
interface SmtpError {
  code?: unknown;
  responseCode?: unknown;
  command?: unknown;
}

/**
 * Whether the archive server refused one message, not the journal as a whole: a
 * permanent (5xx, not 503) answer to MAIL FROM (e.g. 552 SIZE) or to the end of DATA,
 * or a message over the size the server announced (refused before sending, no reply
 * code). Everything else says the sink is unavailable: no connection, a timeout, TLS or
 * authentication failing, a 4xx (the server or the mailbox is in trouble for now), and
 * a 5xx at RCPT TO (the one archive address is refused: so will every message be).
 */
export function isSmtpItemRefusal(err: unknown): boolean {
  const e = (err ?? {}) as SmtpError;
  const code = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const permanent = code !== undefined && code >= 500 && code < 600 && code !== 503;
  if (e.code === 'EMESSAGE') return code === undefined ? e.command === 'MAIL FROM' : permanent;
  if (e.code === 'EENVELOPE') return e.command === 'MAIL FROM' && permanent;
  return false;
}
