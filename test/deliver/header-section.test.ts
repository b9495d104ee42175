import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { openedWithHeaderFacts } from '../../src/deliver/header-section.js';
import { ConnectionPool } from '../../src/deliver/pool.js';
import { sendTransaction } from '../../src/deliver/transaction.js';
import { TestMx } from '../helpers/mx-server.js';

const utf8 = (s: string) => Buffer.from(s, 'utf8');
const HEAD_UTF8 = utf8('Received: from x\r\nSubject: Grüße aus Köln\r\n\r\n');
const HEAD_ASCII = utf8('Received: from x\r\nSubject: plain\r\n\r\n');
const BIG_BODY = Buffer.alloc(300 * 1024, 'a');

/** Everything a stream yields, read as nodemailer reads it (piped). */
async function piped(body: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((resolve) => out.on('end', resolve));
  body.pipe(out);
  await ended;
  return Buffer.concat(chunks);
}

/** `message` as a stream of `size`-byte chunks. */
const inChunks = (message: Buffer, size: number) => Readable.from((function* () {
  for (let i = 0; i < message.length; i += size) yield message.subarray(i, i + size);
})(), { objectMode: false });

describe('openedWithHeaderFacts: does the header section need SMTPUTF8', () => {
  it.each([
    ['UTF-8 in a header field', Buffer.concat([HEAD_UTF8, utf8('hej\r\n')]), true],
    ['all ASCII', Buffer.concat([HEAD_ASCII, utf8('hej\r\n')]), false],
    ['UTF-8 in the body only', Buffer.concat([HEAD_ASCII, utf8('Grüße\r\n')]), false],
    ['8-bit header bytes that are not UTF-8 (Latin-1)', Buffer.concat([Buffer.from('Subject: Gr\xfc\xdfe\r\n\r\n', 'latin1'), utf8('hej\r\n')]), false],
    ['no header fields (starts with the blank line)', utf8('\r\nGrüße\r\n\r\nmore\r\n'), false],
    ['no blank line at all', utf8('Subject: Grüße'), true],
  ])('%s', async (_name, message, expected) => {
    expect((await openedWithHeaderFacts(message)).utf8Header).toBe(expected);
    const fromStream = await openedWithHeaderFacts(inChunks(message, 7));
    expect(fromStream.utf8Header).toBe(expected);
    expect((await piped(fromStream.body)).equals(message)).toBe(true);
  });

  it('a Buffer is handed on as it is', async () => {
    const message = Buffer.concat([HEAD_UTF8, BIG_BODY]);
    expect((await openedWithHeaderFacts(message)).body).toBe(message);
  });

  it('a large stream: read only as far as its header section, the same stream handed back, every byte still in it', async () => {
    const message = Buffer.concat([HEAD_UTF8, BIG_BODY]);
    let yielded = 0;
    const source = Readable.from((function* () {
      for (let i = 0; i < message.length; i += 64 * 1024) {
        yielded++;
        yield message.subarray(i, i + 64 * 1024);
      }
    })(), { objectMode: false });
    const opened = await openedWithHeaderFacts(source);
    expect(opened.body).toBe(source);
    expect(opened.utf8Header).toBe(true);
    // 5 chunks in all: the first holds the header section, at most one more is read ahead.
    expect(yielded).toBeLessThanOrEqual(2);
    expect((await piped(opened.body)).equals(message)).toBe(true);
  });

  it('a header section split across chunks, a UTF-8 character split too', async () => {
    const message = Buffer.concat([HEAD_UTF8, BIG_BODY]);
    const at = HEAD_UTF8.indexOf(utf8('ü')) + 1; // between the two bytes of "ü"
    const source = Readable.from([message.subarray(0, at), message.subarray(at, at + 3), message.subarray(at + 3)], { objectMode: false });
    const opened = await openedWithHeaderFacts(source);
    expect(opened.utf8Header).toBe(true);
    expect((await piped(opened.body)).equals(message)).toBe(true);
  });

  it('a stream read to its end (no blank line) comes back as the Buffer it all fits in', async () => {
    const message = utf8('Received: from x\r\nSubject: Grüße\r\n');
    const opened = await openedWithHeaderFacts(inChunks(message, 5));
    expect(opened.utf8Header).toBe(true);
    expect(Buffer.isBuffer(opened.body) && opened.body.equals(message)).toBe(true);
  });
});

describe('a message looked into this way goes out whole over a real connection', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-header-section-'));
  const mx = new TestMx();
  let pool: ConnectionPool | undefined;
  afterAll(async () => {
    await pool?.closeAll();
    await mx.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a spool file read as a stream: byte for byte', async () => {
    await mx.start();
    pool = new ConnectionPool(validateConfig({ hostname: 'gw.test' }), pino({ level: 'silent' }));
    const file = join(dir, 'body.eml');
    const message = Buffer.concat([HEAD_UTF8, BIG_BODY, utf8('\r\n')]);
    writeFileSync(file, message);
    const opened = await openedWithHeaderFacts(createReadStream(file));
    expect(opened.utf8Header).toBe(true);
    const pc = await pool.acquire({ address: '127.0.0.1', port: mx.port, name: 'mx.test', tls: 'none' });
    const result = await sendTransaction(pc, { from: 'a@gw.test', to: ['x@dest.test'], size: statSync(file).size, eightBit: true, body: opened.body, utf8Header: opened.utf8Header });
    pool.release(pc, result.reusable);
    expect(result.replies[0]).toMatchObject({ ok: true });
    expect(result.smtputf8).toEqual({ action: 'smtputf8', reason: 'header' });
    expect(mx.messages[0]!.raw.equals(message)).toBe(true);
  });
});
