import type { SMTPServerAddress } from 'smtp-server';

/**
 * The MAIL FROM and RCPT TO parameters of the extensions Postern offers; RFC 5321
 * §4.1.1.11 answers any other with 555. smtp-server accepts them silently, and some mean
 * a promise Postern would not keep: REQUIRETLS (RFC 8689, "only over verified TLS") or
 * NOTIFY=NEVER (RFC 3461), when neither extension is offered.
 */
export const OFFERED_MAIL_PARAMS: ReadonlySet<string> = new Set([
  'SIZE', // RFC 1870
  'BODY', // RFC 6152 (8BITMIME)
  'SMTPUTF8', // RFC 6531
  'AUTH', // RFC 4954 §5
]);
/** No RCPT TO parameter: DSN (NOTIFY, ORCPT) is not offered. */
export const OFFERED_RCPT_PARAMS: ReadonlySet<string> = new Set();

/** The first parameter of the command that is not in `offered`, or undefined. */
export function unofferedParameter(address: SMTPServerAddress, offered: ReadonlySet<string>): string | undefined {
  const args = (address as { args?: Record<string, unknown> | false }).args;
  if (!args) return undefined;
  return Object.keys(args).find((name) => !offered.has(name.toUpperCase()));
}
