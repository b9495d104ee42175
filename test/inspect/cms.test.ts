import { describe, expect, it } from 'vitest';
import { openCms } from '../../src/inspect/cms.js';

/**
 * The BER reader on structures written by hand, for the shapes OpenSSL does not make on
 * request (smime.test.ts has the real ones): content cut inside a number, pieces nested in
 * pieces, and hostile lengths and nesting.
 */
const length = (n: number) => (n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]));
const tlv = (tag: number, ...content: Buffer[]) => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const indefinite = (tag: number, ...content: Buffer[]) => Buffer.concat([Buffer.from([tag, 0x80]), ...content, Buffer.from([0, 0])]);
const oid = (hex: string) => tlv(0x06, Buffer.from(hex, 'hex'));
const octets = (text: string) => tlv(0x04, Buffer.from(text));

const SIGNED = '2a864886f70d010702';
const DATA = '2a864886f70d010701';
/** ContentInfo(SignedData) whose encapContentInfo holds `eContent` (none: a detached signature). */
const signedData = (eContent?: Buffer) =>
  tlv(0x30, oid(SIGNED), tlv(0xa0, tlv(0x30, tlv(0x02, Buffer.from([1])), tlv(0x31), tlv(0x30, oid(DATA), ...(eContent ? [tlv(0xa0, eContent)] : [])), tlv(0x31))));

describe('openCms', () => {
  it('gives the content of a DER SignedData, in place', () => {
    const der = signedData(octets('SSN 524-12-3456'));
    const opened = openCms(der);
    expect(opened).toEqual({ content: Buffer.from('SSN 524-12-3456') });
    expect('content' in opened && opened.content.buffer === der.buffer).toBe(true); // a view, not a copy
  });

  it('joins content cut into pieces, nested pieces and indefinite lengths included, cut inside a number', () => {
    const content = indefinite(0x24, octets('SSN 524-1'), indefinite(0x24, octets('2-34')), octets('56'));
    const ber = indefinite(0x30, oid(SIGNED), indefinite(0xa0, indefinite(0x30, tlv(0x02, Buffer.from([1])), tlv(0x31), indefinite(0x30, oid(DATA), indefinite(0xa0, content)), tlv(0x31))));
    expect(openCms(ber)).toEqual({ content: Buffer.from('SSN 524-12-3456') });
  });

  it('no content (certs-only, detached): empty', () => {
    expect(openCms(signedData())).toEqual({ content: Buffer.alloc(0) });
  });

  it.each([
    ['enveloped-data', '2a864886f70d010703', /encrypted \(PKCS#7 enveloped-data\)/],
    ['authenticated enveloped-data', '2a864886f70d0109100117', /encrypted/],
    ['encrypted-data', '2a864886f70d010706', /encrypted/],
    ['compressed-data', '2a864886f70d0109100109', /compressed \(PKCS#7 compressed-data\), which is not opened/],
    ['an unknown type', '2a03', /of type 2a03, which is not opened/],
  ])('%s is opaque, with the reason', (_, type, reason) => {
    const opened = openCms(tlv(0x30, oid(type), tlv(0xa0, tlv(0x30))));
    expect('opaque' in opened && opened.opaque).toMatch(reason);
  });

  it.each([
    ['truncated', signedData(octets('SSN 524-12-3456')).subarray(0, 40), /truncated/],
    ['a length past the end', Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x06]), /truncated/],
    ['a length of more than four bytes', Buffer.from([0x30, 0x85, 1, 0, 0, 0, 0]), /length too large/],
    ['an indefinite primitive', Buffer.from([0x04, 0x80, 0, 0]), /indefinite length on a primitive/],
    ['nesting 100 000 deep', Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i % 2 ? 0x80 : 0x30))), /nested too deeply/],
    ['not a ContentInfo', Buffer.from('Patient SSN 524-12-3456'), /could not be read/],
  ])('%s: opaque, not thrown', (_, der, reason) => {
    const opened = openCms(der);
    expect('opaque' in opened && opened.opaque).toMatch(reason);
  });
});
