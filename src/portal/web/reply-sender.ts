import type { AddressObject, ParsedMail } from 'mailparser';

export interface ReplySender {
  /** MAIL FROM and the From address: the gateway's own. */
  envelopeFrom: string;
  /** `"<who> via <organisation>" <gateway address>` */
  from: string;
  /** The patient, at the address the message they answer used for them. */
  replyTo: string;
}

/**
 * Who a secure reply comes from. Not the patient's address: their domain's SPF and
 * DMARC would fail at the receiving side (Microsoft 365, Google), and bounces would go
 * to the patient. From and the envelope sender are the gateway's own address (so DKIM
 * signs for the gateway's domain), the display name says who wrote it (their name as
 * the original message addressed them, else their address or phone number), and
 * Reply-To is the patient, so answering the reply reaches them through the gateway.
 */
export function replySender(opts: {
  identity: string;
  /** The addresses on the message answered, as it holds them (recipients and sender). */
  addresses: string[];
  matches: (address: string) => boolean;
  original: ParsedMail;
  smsDomain: string;
  organisation: string;
  gatewayAddress: string;
}): ReplySender {
  const replyTo = opts.addresses.find(opts.matches) ?? opts.identity;
  const named = [opts.original.to, opts.original.cc]
    .flat()
    .filter((a): a is AddressObject => Boolean(a))
    .flatMap((a) => a.value)
    .find((a) => a.address && opts.matches(a.address) && a.name);
  const isSms = opts.identity.toLowerCase().endsWith(`@${opts.smsDomain.toLowerCase()}`);
  const who = named?.name || (isSms ? opts.identity.slice(0, opts.identity.lastIndexOf('@')) : replyTo);
  return { envelopeFrom: opts.gatewayAddress, from: `"${displayText(`${who} via ${opts.organisation}`)}" <${opts.gatewayAddress}>`, replyTo };
}

/** Fit for a quoted display name: no line breaks or control characters, no quotes or backslashes. */
function displayText(text: string): string {
  return text.replace(/[\x00-\x1f\x7f"\\]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
}
