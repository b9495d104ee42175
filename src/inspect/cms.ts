/**
 * What an S/MIME body (application/pkcs7-mime, a .p7m: a CMS ContentInfo, RFC 5652) gives
 * inspection. SignedData carries its content in clear, inside the signature structure
 * (opaque signing, RFC 8551 §3.5.2): that content, a MIME entity, is taken out to be
 * inspected; the signature is not verified, inspection needs only what the reader will
 * read. EnvelopedData and the other encrypted types cannot be read by the gateway, and
 * CompressedData is not opened: each is `opaque`, with the reason.
 *
 * A small BER reader rather than node-forge: only one path through the structure is
 * needed, and reading a Buffer in place gives the content without a copy (forge reads a
 * binary string: the body copied into one, the content copied back out, every
 * certificate parsed on the way). BER, not only DER: signers that stream (`openssl cms
 * -stream`, Outlook) write indefinite lengths and cut the content into many OCTET STRINGs.
 */
export type CmsContent = { content: Buffer } | { opaque: string };

const OID = {
  signedData: '2a864886f70d010702',
  envelopedData: '2a864886f70d010703',
  encryptedData: '2a864886f70d010706',
  authEnvelopedData: '2a864886f70d0109100117',
  compressedData: '2a864886f70d0109100109',
};

const SEQUENCE = 0x30;
const SET = 0x31;
const OBJECT_ID = 0x06;
const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const CONSTRUCTED_OCTET_STRING = 0x24;
const EXPLICIT_0 = 0xa0;
/** Deeper than any real ContentInfo on the path read here; bounds the recursion of indefinite lengths. */
const MAX_DEPTH = 32;

export function openCms(der: Buffer): CmsContent {
  try {
    return readContentInfo(new BerReader(der));
  } catch (err) {
    return { opaque: `an S/MIME (PKCS#7) part could not be read (${(err as Error).message})` };
  }
}

function readContentInfo(ber: BerReader): CmsContent {
  const [type, content] = ber.children(ber.expect(ber.element(0), SEQUENCE));
  const oid = ber.hex(ber.expect(type, OBJECT_ID));
  if (oid === OID.envelopedData || oid === OID.authEnvelopedData || oid === OID.encryptedData) {
    return { opaque: 'an S/MIME part is encrypted (PKCS#7 enveloped-data): the gateway cannot read it' };
  }
  if (oid === OID.compressedData) return { opaque: 'an S/MIME part is compressed (PKCS#7 compressed-data), which is not opened' };
  if (oid !== OID.signedData) return { opaque: `an S/MIME part holds PKCS#7 content of type ${oid}, which is not opened` };
  // SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo, ... }
  const [signedData] = ber.children(ber.expect(content, EXPLICIT_0));
  const [version, digests, encap] = ber.children(ber.expect(signedData, SEQUENCE));
  ber.expect(version, INTEGER);
  ber.expect(digests, SET);
  // EncapsulatedContentInfo ::= SEQUENCE { eContentType, eContent [0] EXPLICIT OCTET STRING OPTIONAL }
  const [, eContent] = ber.children(ber.expect(encap, SEQUENCE));
  if (!eContent) return { content: Buffer.alloc(0) }; // certs-only, or a detached signature: no content
  const [octets] = ber.children(ber.expect(eContent, EXPLICIT_0));
  return { content: ber.octets(octets) };
}

interface Element {
  tag: number;
  /** Where the contents start and end (before the end-of-contents octets of an indefinite length). */
  start: number;
  end: number;
  /** Where the next element starts. */
  next: number;
  depth: number;
}

class BerReader {
  constructor(private readonly buf: Buffer) {}

  /** The element at `at`; an indefinite length is found by reading its children up to 00 00. */
  element(at: number, depth = 0): Element {
    if (depth > MAX_DEPTH) throw new Error('nested too deeply');
    const tag = this.byte(at);
    if ((tag & 0x1f) === 0x1f) throw new Error('unexpected high tag number');
    const first = this.byte(at + 1);
    let start = at + 2;
    if (first === 0x80) {
      if (!(tag & 0x20)) throw new Error('indefinite length on a primitive element');
      let p = start;
      while (this.byte(p) !== 0 || this.byte(p + 1) !== 0) p = this.element(p, depth + 1).next;
      return { tag, start, end: p, next: p + 2, depth };
    }
    let length = first;
    if (first > 0x80) {
      const n = first & 0x7f;
      if (n > 4) throw new Error('length too large');
      length = 0;
      for (let k = 0; k < n; k++) length = length * 256 + this.byte(start++);
    }
    const end = start + length;
    if (end > this.buf.length) throw new Error('truncated');
    return { tag, start, end, next: end, depth };
  }

  children(e: Element): Element[] {
    if (!(e.tag & 0x20)) throw new Error(`element 0x${e.tag.toString(16)} is not constructed`);
    const out: Element[] = [];
    for (let p = e.start; p < e.end; ) {
      const child = this.element(p, e.depth + 1);
      out.push(child);
      p = child.next;
    }
    return out;
  }

  expect(e: Element | undefined, tag: number): Element {
    if (!e || e.tag !== tag) throw new Error(`expected tag 0x${tag.toString(16)}, found ${e ? `0x${e.tag.toString(16)}` : 'nothing'}`);
    return e;
  }

  hex(e: Element): string {
    return this.buf.toString('hex', e.start, e.end);
  }

  /** An OCTET STRING's bytes: in place when primitive, joined when cut into pieces. */
  octets(e: Element | undefined): Buffer {
    if (e?.tag === OCTET_STRING) return this.buf.subarray(e.start, e.end);
    const pieces: Buffer[] = [];
    this.collect(this.expect(e, CONSTRUCTED_OCTET_STRING), pieces);
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }

  private collect(e: Element, pieces: Buffer[]): void {
    for (const piece of this.children(e)) {
      if (piece.tag === OCTET_STRING) pieces.push(this.buf.subarray(piece.start, piece.end));
      else this.collect(this.expect(piece, CONSTRUCTED_OCTET_STRING), pieces);
    }
  }

  private byte(i: number): number {
    if (i >= this.buf.length) throw new Error('truncated');
    return this.buf[i]!;
  }
}
