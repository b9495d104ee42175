import { crc32 } from 'node:zlib';

/**
 * Records of the spool's append-only segment log. Each is self-checking, so recovery
 * can tell a complete record from a torn one (a write cut short by a crash):
 *
 *   magic "PSTN" u32 | type u8 | payload length u32 | crc32(payload) u32 | payload
 *
 *   MESSAGE payload: envelope JSON length u32 | envelope JSON | message body
 *   DONE    payload: queue id (ASCII): the message is final or has moved to its own file
 */
export const RecordType = { message: 1, done: 2 } as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

const MAGIC = 0x5053544e;
export const RECORD_HEADER = 13;

export interface EncodedMessage {
  buffers: Buffer[];
  length: number;
  /** Where the body starts, counted from the start of the record. */
  bodyOffset: number;
}

export function encodeMessage(envelopeJson: Buffer, body: Buffer[], bodyLength: number): EncodedMessage {
  const lengthField = Buffer.allocUnsafe(4);
  lengthField.writeUInt32BE(envelopeJson.length);
  let crc = crc32(lengthField);
  crc = crc32(envelopeJson, crc);
  // Empty chunks are skipped: Node 20's crc32 returns 0, not the running value, for an
  // empty view of an empty buffer, and the record would then fail its check on recovery.
  for (const b of body) if (b.length) crc = crc32(b, crc);
  const payloadLength = 4 + envelopeJson.length + bodyLength;
  return {
    buffers: [header(RecordType.message, payloadLength, crc), lengthField, envelopeJson, ...body],
    length: RECORD_HEADER + payloadLength,
    bodyOffset: RECORD_HEADER + 4 + envelopeJson.length,
  };
}

export function encodeDone(id: string): Buffer {
  const payload = Buffer.from(id, 'ascii');
  return Buffer.concat([header(RecordType.done, payload.length, crc32(payload)), payload]);
}

function header(type: RecordType, payloadLength: number, crc: number): Buffer {
  const h = Buffer.allocUnsafe(RECORD_HEADER);
  h.writeUInt32BE(MAGIC, 0);
  h.writeUInt8(type, 4);
  h.writeUInt32BE(payloadLength, 5);
  h.writeUInt32BE(crc >>> 0, 9);
  return h;
}

export type ParsedRecord =
  | { type: typeof RecordType.message; offset: number; envelopeJson: string; bodyOffset: number; bodyLength: number }
  | { type: typeof RecordType.done; offset: number; id: string };

/**
 * Reads records from a segment's bytes. Stops at the first record that is incomplete or
 * fails its check and reports where: everything from there on was never acknowledged.
 */
export function parseSegment(data: Buffer): { records: ParsedRecord[]; validLength: number } {
  const records: ParsedRecord[] = [];
  let pos = 0;
  while (pos + RECORD_HEADER <= data.length) {
    if (data.readUInt32BE(pos) !== MAGIC) break;
    const type = data.readUInt8(pos + 4);
    const length = data.readUInt32BE(pos + 5);
    const crc = data.readUInt32BE(pos + 9);
    const start = pos + RECORD_HEADER;
    if (start + length > data.length) break;
    const payload = data.subarray(start, start + length);
    if (crc32(payload) >>> 0 !== crc) break;
    if (type === RecordType.message) {
      if (length < 4) break;
      const envLength = payload.readUInt32BE(0);
      if (4 + envLength > length) break;
      records.push({
        type,
        offset: pos,
        envelopeJson: payload.subarray(4, 4 + envLength).toString('utf8'),
        bodyOffset: start + 4 + envLength,
        bodyLength: length - 4 - envLength,
      });
    } else if (type === RecordType.done) {
      records.push({ type, offset: pos, id: payload.toString('ascii') });
    } else break;
    pos = start + length;
  }
  return { records, validLength: pos };
}
