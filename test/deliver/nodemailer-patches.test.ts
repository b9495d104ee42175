import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import { describe, expect, it } from 'vitest';
import { applyDataStreamFastPath, passesUnchanged } from '../../src/deliver/nodemailer-patches.js';

type Transform = (chunk: Buffer, enc: BufferEncoding, done: () => void) => void;
const proto = DataStream.prototype as unknown as { _transform: Transform };
const original = proto._transform;

async function encode(chunks: Buffer[], useOriginal: boolean): Promise<Buffer> {
  const stream = new DataStream();
  if (useOriginal) (stream as unknown as { _transform: Transform })._transform = original;
  const out: Buffer[] = [];
  stream.on('data', (d: Buffer) => out.push(d));
  const ended = new Promise((r) => stream.on('end', r));
  for (const c of chunks) stream.write(c);
  stream.end();
  await ended;
  return Buffer.concat(out);
}

function randomChunks(seed: number): Buffer[] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  // Mostly proper CRLF text, sometimes dots at line starts, bare CR/LF and odd splits.
  const pieces = ['Hello world', '\r\n', '\r\n', '.', '..', '\n', '\r', 'Subject: x', 'a.b', '\r\n.\r\n', ' '];
  let text = '';
  const n = 5 + Math.floor(rnd() * 60);
  for (let i = 0; i < n; i++) text += pieces[Math.floor(rnd() * (rnd() < 0.8 ? 3 : pieces.length))];
  const bytes = Buffer.from(text, 'latin1');
  const chunks: Buffer[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    const len = 1 + Math.floor(rnd() * 40);
    chunks.push(bytes.subarray(pos, pos + len));
    pos += len;
  }
  return chunks;
}

describe('nodemailer DataStream fast path', () => {
  applyDataStreamFastPath();

  it('patches the prototype nodemailer itself uses', () => {
    expect(proto._transform).not.toBe(original);
  });

  it('gives byte-identical output to the original encoder on 3,000 random inputs', async () => {
    for (let seed = 1; seed <= 3000; seed++) {
      const chunks = randomChunks(seed);
      const [fast, slow] = await Promise.all([encode(chunks, false), encode(chunks, true)]);
      if (!fast.equals(slow)) throw new Error(`seed ${seed}: ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`);
    }
  });

  it('takes the fast path only when no byte would change', () => {
    expect(passesUnchanged(Buffer.from('a\r\nb\r\n'), false)).toBe(true);
    expect(passesUnchanged(Buffer.from('.a\r\n'), false)).toBe(false);
    expect(passesUnchanged(Buffer.from('.a\r\n'), 0x0a)).toBe(false);
    expect(passesUnchanged(Buffer.from('.a\r\n'), 0x62)).toBe(true);
    expect(passesUnchanged(Buffer.from('a\r\n.b'), 0x62)).toBe(false);
    expect(passesUnchanged(Buffer.from('a\nb'), 0x62)).toBe(false);
    expect(passesUnchanged(Buffer.from('a\rb'), 0x62)).toBe(false);
    expect(passesUnchanged(Buffer.from('a\r'), 0x62)).toBe(true); // CR may be completed by the next chunk
    expect(passesUnchanged(Buffer.from('\nb'), 0x0d)).toBe(true);
    expect(passesUnchanged(Buffer.from('b'), 0x0d)).toBe(false);
    expect(passesUnchanged(Buffer.from('\nb'), 0x62)).toBe(false);
  });
});
