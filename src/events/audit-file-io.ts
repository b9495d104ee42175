import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/** Where a line was written: file name, byte offset and length (without the newline). */
export interface LinePosition {
  file: string;
  offset: number;
  length: number;
}

/** Reads one line back (a webhook body from the outbox). */
export async function readLineAt(dir: string, pos: LinePosition): Promise<string> {
  const fh = await open(join(dir, pos.file), 'r');
  try {
    const buf = Buffer.alloc(pos.length);
    const { bytesRead } = await fh.read(buf, 0, pos.length, pos.offset);
    if (bytesRead !== pos.length) throw new Error(`${pos.file}: line at ${pos.offset} is cut short`);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Where the complete lines end, and the last of them, read backwards from the end. */
export async function readTail(fh: FileHandle, size: number): Promise<{ end: number; last?: string | undefined }> {
  let buf = Buffer.alloc(0);
  for (let from = size, step = 64 * 1024; ; step *= 2) {
    const start = Math.max(0, from - step);
    const chunk = Buffer.alloc(from - start);
    await fh.read(chunk, 0, chunk.length, start);
    buf = Buffer.concat([chunk, buf]);
    from = start;
    const end = buf.lastIndexOf(0x0a);
    if (end === -1 && from === 0) return { end: 0 };
    if (end === -1) continue;
    const begin = end === 0 ? -1 : buf.lastIndexOf(0x0a, end - 1);
    if (begin !== -1 || from === 0) return { end: from + end + 1, last: buf.subarray(begin + 1, end).toString('utf8') };
  }
}
