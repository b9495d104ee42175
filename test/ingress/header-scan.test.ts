import { describe, expect, it } from 'vitest';
import { HeaderScanner } from '../../src/ingress/header-scan.js';

function scan(chunks: string[], max = 1 << 20, end = true): HeaderScanner {
  const s = new HeaderScanner(max);
  for (const c of chunks) s.push(Buffer.from(c, 'latin1'));
  if (end) s.end();
  return s;
}

const HEADER = 'Received: from a\r\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: Alice <alice@example.org>\r\nSubject: Hello\r\n  world\r\nX-Postern-Loop: gw.example.org\r\n\r\n';
const BODY = 'Body-Line: looks like a header\r\nmore body\r\n\r\nX-Fake: also body\r\n';
const MESSAGE = HEADER + BODY;
const EXPECTED: [string, string][] = [
  ['received', 'from a by b; Mon, 1 Jan 2024 00:00:00 +0000'],
  ['from', 'Alice <alice@example.org>'],
  ['subject', 'Hello  world'],
  ['x-postern-loop', 'gw.example.org'],
];

describe('HeaderScanner', () => {
  it('reads the header fields of a one-chunk message and ignores the body', () => {
    const s = scan([MESSAGE], 1 << 20, false);
    expect(s.done).toBe(true);
    expect(s.tooLarge).toBe(false);
    expect(s.fields()).toEqual(EXPECTED);
  });

  it('is done as soon as the blank line passes, before end()', () => {
    const s = new HeaderScanner(1 << 20);
    s.push(Buffer.from('A: 1\r\n'));
    expect(s.done).toBe(false);
    s.push(Buffer.from('\r\nbody'));
    expect(s.done).toBe(true);
    expect(s.fields()).toEqual([['a', '1']]);
  });

  it('fields() before the header is complete is empty', () => {
    const s = new HeaderScanner(1 << 20);
    s.push(Buffer.from('A: 1\r\n'));
    expect(s.fields()).toEqual([]);
  });

  it('a message that starts with an empty line has no header fields: its body is never read as headers, at any split', () => {
    // The body here would be 51 Received fields (a loop) and more than the limit.
    const message = `\r\n${'Received: from x by y\r\n'.repeat(51)}${'z'.repeat(2000)}\r\n`;
    for (let at = 0; at <= 4; at++) {
      const s = scan([message.slice(0, at), message.slice(at)], 1000, false);
      expect(s.done, `split at ${at}`).toBe(true);
      expect(s.tooLarge, `split at ${at}`).toBe(false);
      expect(s.fields(), `split at ${at}`).toEqual([]);
    }
  });

  it('header/body split across chunks at every position gives the same fields', () => {
    for (let at = 0; at <= MESSAGE.length; at++) {
      const s = scan([MESSAGE.slice(0, at), MESSAGE.slice(at)], 1 << 20, false);
      expect(s.done, `split at ${at}`).toBe(true);
      expect(s.fields(), `split at ${at}`).toEqual(EXPECTED);
    }
  });

  it('split into three chunks at every pair of positions around the blank line', () => {
    const blank = HEADER.length - 4;
    for (let a = blank - 6; a <= blank + 6; a++) {
      for (let b = a; b <= blank + 10; b++) {
        const s = scan([MESSAGE.slice(0, a), MESSAGE.slice(a, b), MESSAGE.slice(b)], 1 << 20, false);
        expect(s.done, `split at ${a},${b}`).toBe(true);
        expect(s.fields(), `split at ${a},${b}`).toEqual(EXPECTED);
      }
    }
  });

  it('one byte at a time', () => {
    const s = scan(MESSAGE.split(''), 1 << 20, false);
    expect(s.done).toBe(true);
    expect(s.fields()).toEqual(EXPECTED);
  });

  it('unfolds folded headers (CRLF + space or tab)', () => {
    const s = scan(['Subject: one\r\n two\r\n\tthree\r\nTo: a@example.org,\r\n    b@example.org\r\n\r\n']);
    expect(s.fields()).toEqual([
      ['subject', 'one two three'],
      ['to', 'a@example.org,    b@example.org'],
    ]);
  });

  it('a fold split across chunks is still a fold', () => {
    const text = 'Subject: one\r\n two\r\n\r\nbody';
    for (let at = 1; at < text.length; at++) {
      expect(scan([text.slice(0, at), text.slice(at)]).fields(), `split at ${at}`).toEqual([['subject', 'one two']]);
    }
  });

  it('lower-cases names and trims names and values', () => {
    expect(scan(['X-MiXeD :   value with spaces   \r\nEMPTY:\r\n\r\n']).fields()).toEqual([
      ['x-mixed', 'value with spaces'],
      ['empty', ''],
    ]);
  });

  it('keeps colons inside values and repeated fields in order', () => {
    expect(scan(['Received: a: b: c\r\nreceived: second\r\nRECEIVED: third\r\n\r\n']).fields()).toEqual([
      ['received', 'a: b: c'],
      ['received', 'second'],
      ['received', 'third'],
    ]);
  });

  it('the header section ends at the first line that is no field: it and the lines after it are body (protect/header-end.ts)', () => {
    expect(scan(['A: 1\r\nno colon here\r\nB: 2\r\n\r\n']).fields()).toEqual([['a', '1']]);
    expect(scan(['no colon here\r\n: no name\r\nA: 1\r\n\r\n']).fields()).toEqual([]);
  });

  it('message without body separator: the whole message is header, at end()', () => {
    const s = new HeaderScanner(1 << 20);
    s.push(Buffer.from('From: a@example.org\r\nSubject: no body\r\n'));
    expect(s.done).toBe(false);
    s.end();
    expect(s.done).toBe(true);
    expect(s.tooLarge).toBe(false);
    expect(s.fields()).toEqual([
      ['from', 'a@example.org'],
      ['subject', 'no body'],
    ]);
  });

  it('message without a final CRLF', () => {
    expect(scan(['A: 1\r\nB: 2']).fields()).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
  });

  it('a bare LF blank line ends the section, as everywhere else (ingress never sees one: the line-ending guard refuses or rewrites it first)', () => {
    const s = new HeaderScanner(1 << 20);
    s.push(Buffer.from('A: 1\n\nB: 2\r\n'));
    expect(s.done).toBe(true);
    expect(s.fields()).toEqual([['a', '1']]);
  });

  it('header block over the limit sets tooLarge and stops', () => {
    const s = new HeaderScanner(20);
    s.push(Buffer.from('Subject: 0123456789\r\n'));
    expect(s.tooLarge).toBe(true);
    expect(s.done).toBe(true);
  });

  it('the limit counts header bytes including the blank line, not the body', () => {
    const header = 'A: 1\r\nB: 2\r\n\r\n'; // 14 bytes
    const body = 'x'.repeat(1000);
    const exact = scan([header + body], header.length);
    expect(exact.tooLarge).toBe(false);
    expect(exact.fields()).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
    expect(scan([header + body], header.length - 1).tooLarge).toBe(true);
  });

  it('the limit is enforced across many chunks', () => {
    const s = new HeaderScanner(100);
    let i = 0;
    while (!s.done && i < 100) s.push(Buffer.from(`X-N${i++}: value\r\n`));
    expect(s.tooLarge).toBe(true);
    // Stopped soon after crossing the limit rather than reading on.
    expect(i).toBeLessThanOrEqual(8);
  });

  it('a message without separator larger than the limit is tooLarge', () => {
    const s = scan(['A: ' + 'x'.repeat(50) + '\r\n'], 30);
    expect(s.tooLarge).toBe(true);
  });

  it('pushes after done are ignored', () => {
    const s = scan(['A: 1\r\n\r\n'], 1 << 20, false);
    s.push(Buffer.from('B: 2\r\n\r\n'));
    s.end();
    expect(s.fields()).toEqual([['a', '1']]);
  });

  it('keeps non-ASCII bytes as latin1', () => {
    expect(scan([Buffer.from('Subject: caf\xe9\r\n\r\n', 'latin1').toString('latin1')]).fields()).toEqual([['subject', 'caf\xe9']]);
  });
});
