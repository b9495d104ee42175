import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataFastPathStats } from '../../src/ingress/smtp-data-fast-path.js';
import { applyPatches, POSTERN_PATCHES } from '../../src/ingress/smtp-server-patches.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/** A server that keeps what each DATA stream delivered (the message as the application sees it). */
async function startServer(patched: boolean): Promise<{ port: number; received: Buffer[]; close(): Promise<void> }> {
  const received: Buffer[] = [];
  const server = new SMTPServer({
    ...(patched ? { [POSTERN_PATCHES]: true } : {}),
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    size: 10_000_000,
    onData(stream, _session, cb) {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => {
        received.push(Buffer.concat(parts));
        cb(null);
      });
    },
  } as ConstructorParameters<typeof SMTPServer>[0]);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.server.address() as { port: number }).port;
  return { port, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Message lines, many of them starting with dots: what the application must get back. */
function message(rand: () => number): string[] {
  const lines = ['Subject: dots', ''];
  const n = 50 + Math.floor(rand() * 400);
  for (let i = 0; i < n; i++) {
    const r = rand();
    const text = 'x'.repeat(Math.floor(rand() * 120));
    lines.push(r < 0.1 ? '.' : r < 0.2 ? `.${text}` : r < 0.25 ? `..${text}` : r < 0.3 ? '' : text);
  }
  return lines;
}

/** Sends one transaction with the DATA bytes cut at random places, each piece written on its own (or in one write); the reply to the message. */
async function send(port: number, wire: Buffer, rand: () => number, oneWrite = false): Promise<string> {
  const smtp = await RawSmtp.connect(port);
  try {
    for (const [cmd, code] of [
      ['EHLO client.test', '250'],
      ['MAIL FROM:<a@client.test>', '250'],
      ['RCPT TO:<b@dest.test>', '250'],
      ['DATA', '354'],
    ] as const) {
      const reply = await smtp.command(cmd);
      if (!reply.startsWith(code)) return `${cmd}: ${reply}`;
    }
    for (let at = 0; at < wire.length; ) {
      const piece = oneWrite ? wire.length : 1 + Math.floor(rand() * (rand() < 0.3 ? 8 : 9000));
      smtp.write(wire.subarray(at, at + piece));
      at += piece;
      await new Promise((r) => setTimeout(r, rand() < 0.5 ? 0 : 1));
    }
    return await smtp.read();
  } finally {
    smtp.close();
  }
}

describe('DATA fast path (patch 5): the same bytes as the library, however the input is cut', () => {
  let patched: Awaited<ReturnType<typeof startServer>>;
  let stock: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    applyPatches();
    patched = await startServer(true);
    stock = await startServer(false);
  });
  afterAll(async () => {
    await patched.close();
    await stock.close();
  });

  it('dot-stuffed lines, escape dots and the terminator split across chunks arrive unstuffed, as the stock library gives them', async () => {
    const before = { ...dataFastPathStats };
    for (let seed = 1; seed <= 40; seed++) {
      const lines = message(seededRandom(seed));
      const expected = Buffer.from(lines.map((l) => `${l}\r\n`).join(''));
      const wire = Buffer.from(lines.map((l) => `${l.startsWith('.') ? '.' : ''}${l}\r\n`).join('') + '.\r\n');
      expect(await send(patched.port, wire, seededRandom(seed * 7))).toMatch(/^250 /);
      expect(await send(stock.port, wire, seededRandom(seed * 7))).toMatch(/^250 /);
      const fromPatched = patched.received.at(-1)!;
      const fromStock = stock.received.at(-1)!;
      expect(fromStock.equals(expected), `stock library, seed ${seed}`).toBe(true);
      expect(fromPatched.equals(expected), `patched, seed ${seed}`).toBe(true);
    }
    // Both shortcuts ran: chunks without a dot at a line start, and chunks cut before one.
    expect(dataFastPathStats.chunks).toBeGreaterThan(before.chunks);
    expect(dataFastPathStats.splits).toBeGreaterThan(before.splits);
  });

  it('messages written whole (dot lines included) arrive as the stock library gives them, the last chunk cut before the terminator', async () => {
    const before = { ...dataFastPathStats };
    for (let seed = 100; seed < 110; seed++) {
      const lines = message(seededRandom(seed));
      const expected = Buffer.from(lines.map((l) => `${l}\r\n`).join(''));
      const wire = Buffer.from(lines.map((l) => `${l.startsWith('.') ? '.' : ''}${l}\r\n`).join('') + '.\r\n');
      expect(await send(patched.port, wire, seededRandom(seed), true)).toMatch(/^250 /);
      expect(patched.received.at(-1)!.equals(expected), `seed ${seed}`).toBe(true);
    }
    const plain = `Subject: plain\r\n\r\n${'a line of text\r\n'.repeat(6000)}`;
    expect(await send(patched.port, Buffer.from(`${plain}.\r\n`), seededRandom(1), true)).toMatch(/^250 /);
    expect(patched.received.at(-1)!.toString()).toBe(plain);
    expect(dataFastPathStats.splits).toBeGreaterThan(before.splits);
  });

  it('a message without any dot line goes through the fast path whole and unchanged', async () => {
    const before = dataFastPathStats.chunks;
    const body = `Subject: plain\r\n\r\n${'line of text without a leading dot\r\n'.repeat(3000)}`;
    const rand = seededRandom(99);
    expect(await send(patched.port, Buffer.from(`${body}.\r\n`), rand)).toMatch(/^250 /);
    expect(patched.received.at(-1)!.toString()).toBe(body);
    expect(dataFastPathStats.chunks - before).toBeGreaterThan(5);
  });

  it('a server created without the option keeps the library path', async () => {
    const before = dataFastPathStats.chunks;
    const body = `Subject: stock\r\n\r\n${'abc\r\n'.repeat(5000)}`;
    expect(await send(stock.port, Buffer.from(`${body}.\r\n`), seededRandom(5))).toMatch(/^250 /);
    expect(stock.received.at(-1)!.toString()).toBe(body);
    expect(dataFastPathStats.chunks).toBe(before);
  });
});

describe('DATA fast path and backpressure', () => {
  type Parser = NodeJS.WritableStream & { oncommand: (cmd: Buffer, cb: () => void) => void; startDataMode(max: number): NodeJS.ReadableStream & { readableLength: number; writableLength: number } };

  /** A patched parser, as a Postern server's connection makes it. */
  function patchedParser(): Parser {
    applyPatches();
    const connection = { _server: { options: { [POSTERN_PATCHES]: true } }, _onCommand() {}, send() {} };
    return (SMTPConnection.prototype as unknown as { _createParser(this: unknown): Parser })._createParser.call(connection);
  }

  it('stops taking chunks while the message consumer is behind, even when every chunk ends in a stuffed dot', async () => {
    // The split write before such a dot and the library's write before it strips one do not
    // wait for drain: the parser must wait before the next chunk. Without that, a consumer
    // that reads nothing was handed all 13 MB here.
    const parser = patchedParser();
    let data: ReturnType<Parser['startDataMode']> | undefined;
    parser.oncommand = (_cmd, cb) => {
      data = parser.startDataMode(1e12);
      cb();
    };
    await new Promise((r) => parser.write(Buffer.from('DATA\r\n'), () => r(undefined)));
    const chunk = Buffer.from(`${'a'.repeat(64 * 1024 - 4)}\r\n..`, 'latin1');
    for (let i = 0; i < 200; i++) {
      // A write the parser does not finish within a moment is one it is holding back: stop.
      const taken = await Promise.race([new Promise((r) => parser.write(chunk, () => r(true))), new Promise((r) => setTimeout(() => r(false), 100))]);
      if (!taken) break;
    }
    expect(data!.readableLength + data!.writableLength).toBeLessThan(1024 * 1024);
  });
});
