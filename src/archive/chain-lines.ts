import { createReadStream } from 'node:fs';

export interface ChainLine {
  /** 0-based position of the line from where reading started. */
  index: number;
  line: string;
  /** Byte offset of the line's first byte. */
  start: number;
  /** false for a last line without its newline (a torn write). */
  complete: boolean;
}

/** The lines of a chain log from byte `start`, streamed (a log may be very large). */
export async function* readChainLines(path: string, start = 0): AsyncGenerator<ChainLine> {
  let carry = Buffer.alloc(0);
  let offset = start;
  let index = 0;
  for await (const chunk of createReadStream(path, { start })) {
    let buf = carry.length ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a)) {
      yield { index: index++, line: buf.subarray(0, nl).toString('utf8'), start: offset, complete: true };
      offset += nl + 1;
      buf = buf.subarray(nl + 1);
    }
    carry = Buffer.from(buf);
  }
  if (carry.length) yield { index, line: carry.toString('utf8'), start: offset, complete: false };
}
