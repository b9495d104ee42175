import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { describe, expect, it, onTestFinished } from 'vitest';
import { explicit, implicit, octets, oid, sequence, setOf, smallInt, toBuffer } from '../../src/protect/der.js';
import { findProgram } from '../helpers/programs.js';

const openssl = findProgram('openssl');
const { asn1 } = forge;
const DATA_OID = '1.2.840.113549.1.7.1';

/**
 * Lengths where the DER length octets change form (X.690 §8.1.3): short form up to 127,
 * then one, two, three, four length bytes. `header` is the minimal header length of an
 * OCTET STRING of that many bytes.
 */
const BOUNDARIES = [
  { n: 0, header: 2 },
  { n: 127, header: 2 },
  { n: 128, header: 3 },
  { n: 255, header: 3 },
  { n: 256, header: 4 },
  { n: 65535, header: 4 },
  { n: 65536, header: 5 },
  { n: 2 ** 24 - 1, header: 5 },
  { n: 2 ** 24, header: 6 },
];

/** The same structure as node-forge's DER encoder writes it (its binary strings, its length code). */
function forgeEncoding(content: Buffer): Buffer {
  const { Class, Type } = asn1;
  const node = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
    asn1.create(Class.UNIVERSAL, Type.OID, false, asn1.oidToDer(DATA_OID).getBytes()),
    asn1.create(Class.CONTEXT_SPECIFIC, 0, true, [asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, false, content.toString('binary'))]),
    asn1.create(Class.CONTEXT_SPECIFIC, 1, false, content.toString('binary')),
  ]);
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}

describe('DER lengths at every boundary of their encoding', () => {
  it.each(BOUNDARIES)('$n content bytes: the encoding node-forge writes, with a minimal header', ({ n, header }) => {
    const content = Buffer.alloc(n, 0x5a);
    // Two pieces for the content, as the cipher hands them over: the join must not change the bytes.
    const der = toBuffer(sequence(oid(DATA_OID), explicit(0, octets(content.subarray(0, n >> 1), content.subarray(n >> 1))), implicit(1, octets(content))));
    expect(der.equals(forgeEncoding(content))).toBe(true);
    const inner = toBuffer(octets(content));
    expect(inner.length - n).toBe(header);
  });

  // Skipped only on a developer machine without OpenSSL; under CI=true findProgram throws.
  it.skipIf(!openssl)('openssl asn1parse reads each nesting with the lengths written, to the last byte', () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-der-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    for (const { n, header } of BOUNDARIES) {
      const content = Buffer.alloc(n); // zeros: asn1parse dumps them in hex, limited by -dlimit
      const file = join(dir, `${n}.der`);
      const outerHeader = (len: number) => toBuffer(octets(Buffer.alloc(len))).length - len;
      const explicitLength = header + n;
      const seqLength = 11 + (outerHeader(explicitLength) + explicitLength) + 3; // OID(11) + [0] + INTEGER(3)
      writeFileSync(file, toBuffer(sequence(oid(DATA_OID), explicit(0, octets(content)), smallInt(7))));
      const lines = execFileSync(openssl as string, ['asn1parse', '-inform', 'DER', '-in', file, '-dlimit', '4'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => /^\s*\d+:d=/.test(l))
        .map((l) => /^\s*(\d+):d=(\d+)\s+hl=(\d+)\s+l=\s*(\d+)\s+(\w+):\s*(.+?)\s*(?::.*)?$/.exec(l)!.slice(1, 7));
      const seqHeader = outerHeader(seqLength);
      const explicitHeader = outerHeader(explicitLength);
      expect(lines).toEqual([
        ['0', '0', String(seqHeader), String(seqLength), 'cons', 'SEQUENCE'],
        [String(seqHeader), '1', '2', '9', 'prim', 'OBJECT'],
        [String(seqHeader + 11), '1', String(explicitHeader), String(explicitLength), 'cons', 'cont [ 0 ]'],
        [String(seqHeader + 11 + explicitHeader), '2', String(header), String(n), 'prim', 'OCTET STRING'],
        [String(seqHeader + 11 + explicitHeader + explicitLength), '1', '2', '1', 'prim', 'INTEGER'],
      ]);
    }
  });

  it('SET OF is sorted by encoding (X.690 §11.6) and [n] IMPLICIT keeps the constructed bit', () => {
    const set = toBuffer(setOf(smallInt(3), smallInt(1), octets(Buffer.from([0])), smallInt(2)));
    expect(set.toString('hex')).toBe('310c' + '020101' + '020102' + '020103' + '040100');
    expect(toBuffer(implicit(0, set)).toString('hex')).toBe('a00c' + set.subarray(2).toString('hex'));
    expect(toBuffer(implicit(2, octets(Buffer.from('hi')))).toString('hex')).toBe('82026869');
  });
});
