import forge from 'node-forge';

/**
 * A few DER (X.690) encoders over Buffers, for the CMS structures Postern writes
 * (cms.ts). Built from Buffers, not node-forge's binary strings, so a 10 MB encrypted
 * body is copied once, not turned into a string and back.
 */
function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, content: Buffer | Buffer[]): Buffer {
  const body = Buffer.isBuffer(content) ? content : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

export const sequence = (...items: Buffer[]) => tlv(0x30, items);
/** SET OF in DER order (X.690 §11.6: sorted by encoding), as verifiers re-encode it. */
export const setOf = (...items: Buffer[]) => tlv(0x31, [...items].sort(Buffer.compare));
export const oid = (dotted: string) => tlv(0x06, Buffer.from(forge.asn1.oidToDer(dotted).getBytes(), 'binary'));
export const octets = (bytes: Buffer) => tlv(0x04, bytes);
export const nullValue = () => Buffer.from([0x05, 0x00]);
export const smallInt = (n: number) => tlv(0x02, Buffer.from([n]));
/** [n] EXPLICIT (constructed, wraps a whole element). */
export const explicit = (n: number, ...items: Buffer[]) => tlv(0xa0 | n, items);
/** [n] IMPLICIT replacing a constructed tag (SET OF, SEQUENCE): the contents of `element` under [n]. */
export const implicitConstructed = (n: number, element: Buffer) => retag(element, 0xa0 | n);
/** [n] IMPLICIT replacing a primitive tag (OCTET STRING). */
export const implicitPrimitive = (n: number, element: Buffer) => retag(element, 0x80 | n);
/** UTCTime (dates 1950–2049, RFC 5280 §4.1.2.5.1), else GeneralizedTime. */
export function time(date: Date): Buffer {
  const utc = date.getUTCFullYear() < 2050;
  const text = forge.asn1[utc ? 'dateToUtcTime' : 'dateToGeneralizedTime'](date);
  return tlv(utc ? 0x17 : 0x18, Buffer.from(text, 'latin1'));
}

function retag(element: Buffer, tag: number): Buffer {
  const copy = Buffer.from(element);
  copy[0] = tag;
  return copy;
}

/** An AlgorithmIdentifier: the OID, with a NULL (RSA) or other parameters, or none. */
export const algorithm = (dotted: string, params?: Buffer) => sequence(oid(dotted), ...(params ? [params] : []));
