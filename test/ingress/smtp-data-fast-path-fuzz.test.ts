import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { describe, expect, it } from 'vitest';
import { dataFastPathStats } from '../../src/ingress/smtp-data-fast-path.js';
import { applyPatches, POSTERN_PATCHES } from '../../src/ingress/smtp-server-patches.js';
import { seededRandom } from '../helpers/seeded-random.js';

/**
 * The DATA fast path against the stock parser, byte for byte, on adversarial input: short
 * bodies made only of CR, LF, dots and one letter (every kind of dot at a line start,
 * bare line endings, smuggling attempts), with a command after the message, cut into
 * chunks at random places. Both parsers must hand the application the same message
 * bytes and the same commands after it.
 */

interface Parser {
  oncommand: (cmd: Buffer, cb: () => void) => void;
  startDataMode(maxBytes: number): NodeJS.ReadableStream;
  continue(): void;
  write(chunk: Buffer, cb: () => void): boolean;
  end(): void;
}

/** A parser as Postern's server makes it (marked for the fast path), or a stock one. */
function parser(patched: boolean): Parser {
  if (!patched) return new SMTPStream() as unknown as Parser;
  const fakeConnection = { _server: { options: { [POSTERN_PATCHES]: true } }, _onCommand() {}, send() {} };
  return (SMTPConnection.prototype as unknown as { _createParser(this: unknown): Parser })._createParser.call(fakeConnection);
}

/** Feeds the chunks and reports what the application saw: messages and commands, in order. */
async function run(patched: boolean, chunks: Buffer[]): Promise<string[]> {
  const p = parser(patched);
  const seen: string[] = [];
  p.oncommand = (cmd, cb) => {
    const line = cmd.toString('binary');
    seen.push(`cmd:${line}`);
    if (line !== 'DATA') return cb();
    const stream = p.startDataMode(1_000_000);
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('end', () => {
      seen.push(`msg:${JSON.stringify(Buffer.concat(parts).toString('binary'))}`);
      p.continue();
    });
    cb();
  };
  for (const c of chunks) await new Promise<void>((resolve) => p.write(c, () => resolve()));
  // Let deferred feeds (the library re-enters after an escape dot with setImmediate) finish.
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  p.end();
  return seen;
}

const ALPHABET = ['\r', '\n', '.', 'a', '\r\n', '\r\n.', '\r\n.\r\n', '\n.\n', '\r\n..'];

describe('DATA fast path: the stock parser\'s result on adversarial bytes, however they are cut', () => {
  it('3,000 random bodies of CR, LF, dots and text, with a command after: same messages, same commands', async () => {
    applyPatches();
    const before = { ...dataFastPathStats };
    for (let seed = 1; seed <= 3000; seed++) {
      const rand = seededRandom(seed);
      let body = '';
      const tokens = 1 + Math.floor(rand() * 16);
      for (let i = 0; i < tokens; i++) body += ALPHABET[Math.floor(rand() * ALPHABET.length)];
      // Long text sometimes, so chunks are long enough for both shortcuts.
      if (rand() < 0.3) body = 'x'.repeat(Math.floor(rand() * 40)) + body;
      const wire = Buffer.from(`DATA\r\n${body}\r\n.\r\nNOOP\r\n`, 'binary');
      const chunks: Buffer[] = [];
      for (let at = 0; at < wire.length; ) {
        const piece = 1 + Math.floor(rand() * (rand() < 0.5 ? 4 : 30));
        chunks.push(wire.subarray(at, at + piece));
        at += piece;
      }
      const stock = await run(false, chunks);
      const ours = await run(true, chunks);
      expect(ours, `seed ${seed}: ${JSON.stringify(body)}`).toEqual(stock);
    }
    expect(dataFastPathStats.chunks).toBeGreaterThan(before.chunks);
    expect(dataFastPathStats.splits).toBeGreaterThan(before.splits);
  });
});
