import forge from 'node-forge';

/**
 * DER (X.690) encoding for the CMS structures Postern writes (cms.ts). A value being
 * built is a list of pieces and their total length: wrapping it (SEQUENCE, [0], IMPLICIT
 * re-tagging) adds or swaps a small header piece and never copies the content. The
 * encrypted body, the one large piece, is copied once, when `toBuffer` joins the pieces.
 * Postern only writes these structures; it never parses CMS from the outside with them.
 */
export interface Der {
  readonly pieces: readonly Buffer[];
  readonly length: number;
}

type Part = Buffer | Der;

const piecesOf = (part: Part): readonly Buffer[] => (Buffer.isBuffer(part) ? [part] : part.pieces);

/** The length octets: short form below 128, else 0x80|count and the big-endian length, minimal (X.690 §8.1.3, §10.1). */
export function lengthOctets(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Part[]): Der {
  const pieces = content.flatMap(piecesOf);
  const size = pieces.reduce((sum, p) => sum + p.length, 0);
  const header = Buffer.concat([Buffer.from([tag]), lengthOctets(size)]);
  return { pieces: [header, ...pieces], length: header.length + size };
}

/** The finished encoding: the single copy of every piece. */
export const toBuffer = (part: Part): Buffer => (Buffer.isBuffer(part) ? part : Buffer.concat(part.pieces, part.length));

export const sequence = (...items: Part[]) => tlv(0x30, ...items);
/** SET OF in DER order (X.690 §11.6: sorted by encoding), as verifiers re-encode it. Its items are small. */
export const setOf = (...items: Part[]) => tlv(0x31, ...items.map(toBuffer).sort(Buffer.compare));
export const oid = (dotted: string) => tlv(0x06, Buffer.from(forge.asn1.oidToDer(dotted).getBytes(), 'binary'));
export const octets = (...bytes: Buffer[]) => tlv(0x04, ...bytes);
export const nullValue = () => tlv(0x05);
export const smallInt = (n: number) => tlv(0x02, Buffer.from([n]));
/** [n] EXPLICIT: a constructed context tag around whole elements. */
export const explicit = (n: number, ...items: Part[]) => tlv(0xa0 | n, ...items);

/**
 * [n] IMPLICIT: the element's contents under a context tag that keeps its constructed
 * bit (X.690 §8.14.3): a SET OF becomes [n] constructed, an OCTET STRING [n] primitive.
 * Only the tag octet is new; the rest is the element's own pieces.
 */
export function implicit(n: number, element: Part): Der {
  const [first, ...rest] = piecesOf(element);
  if (!first?.length) throw new Error('implicit tagging needs an encoded element');
  const tag = Buffer.from([(first[0]! & 0x20) | 0x80 | n]);
  return { pieces: [tag, first.subarray(1), ...rest], length: element.length };
}

/** UTCTime (dates 1950–2049, RFC 5280 §4.1.2.5.1), else GeneralizedTime. */
export function time(date: Date): Der {
  const utc = date.getUTCFullYear() < 2050;
  const text = forge.asn1[utc ? 'dateToUtcTime' : 'dateToGeneralizedTime'](date);
  return tlv(utc ? 0x17 : 0x18, Buffer.from(text, 'latin1'));
}

/** An AlgorithmIdentifier: the OID, with a NULL (RSA) or other parameters, or none. */
export const algorithm = (dotted: string, params?: Part) => sequence(oid(dotted), ...(params ? [params] : []));
