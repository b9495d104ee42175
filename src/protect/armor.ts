import { wrap76 } from './mime-entity.js';

/** CRC-24 (RFC 4880 §6.1) lookup table: polynomial 0x1864CFB. */
const TABLE = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 16;
    for (let bit = 0; bit < 8; bit++) {
      c <<= 1;
      if (c & 0x1000000) c ^= 0x1864cfb;
    }
    t[i] = c & 0xffffff;
  }
  return t;
})();

function crc24(data: Uint8Array): Buffer {
  let crc = 0xb704ce;
  for (const byte of data) crc = ((crc << 8) ^ (TABLE[((crc >> 16) ^ byte) & 0xff] as number)) & 0xffffff;
  return Buffer.from([crc >> 16, (crc >> 8) & 0xff, crc & 0xff]);
}

/**
 * ASCII armor of an OpenPGP message (RFC 4880 §6.2), CRLF line ends as the MIME part
 * needs them, base64 by Node. openpgp's own armor encodes in JavaScript, and its output
 * had to be rewritten for CRLF afterwards: together a third of the cost of encrypting a
 * 50 KB message. The CRC-24 line stays: GnuPG 2.2 misreads an armor without it when the
 * base64 ends in padding.
 */
export function armorMessage(binary: Uint8Array): string {
  const bytes = Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength);
  return `-----BEGIN PGP MESSAGE-----\r\n\r\n${wrap76(bytes.toString('base64'))}=${crc24(bytes).toString('base64')}\r\n-----END PGP MESSAGE-----\r\n`;
}
