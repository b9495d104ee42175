import { describe, expect, it } from 'vitest';
import { headerEnd, HeaderEndScanner, type HeaderEnd } from '../../src/protect/header-end.js';
import { seededRandom } from '../helpers/seeded-random.js';

/** What the scanner says for a message cut into these chunks: the end, and how many bytes it had read when it knew. */
function scan(chunks: Buffer[]): { end: HeaderEnd; readWhenKnown: number } {
  const s = new HeaderEndScanner();
  let read = 0;
  for (const c of chunks) {
    read += c.length;
    const end = s.push(c);
    if (end) return { end, readWhenKnown: read };
  }
  return { end: s.finish(), readWhenKnown: read };
}

const m = (text: string) => Buffer.from(text, 'latin1');

/** Messages that end their header section in every way headerEnd knows. */
const MESSAGES = [
  '',
  '\r\n',
  '\n',
  '\r',
  'Subject: s\r\n\r\nbody\r\n',
  'Subject: s\n\nbody\n',
  'Subject: s\r\n  folded\r\n\tagain\r\nFrom: a@b.test\r\n\r\nbody',
  'Obs-Space \t: v\r\nX-Odd_Name!: v\r\n\r\n',
  'From: a@b.test\r\nDear Dr Smith,\r\nSubject: body line\r\n\r\nmore',
  'From: a@b.test\r\nResults attached.\r\n',
  'From: a@b.test\r\nPatient J. Smith: HIV positive\r\n',
  'From: a@b.test\r\nM\xfcller: 5,4 mmol/l\r\n',
  'From: a@b.test\r\n: empty name\r\n',
  ' indented first line\r\nSubject: s\r\n\r\n',
  '\tSubject: s\r\n',
  'NoColonAtAll\r\nSubject: s\r\n',
  'NoColonAtAll',
  'Name \t',
  'Name\r',
  'Name \r',
  'Name\r\r\n',
  'Subject: s\r\n\r',
  'Subject: s\r\n\r\r\n',
  'Subject: s\r\nFrom: a@b.test',
  'Subject: s\r\nFrom: a@b.test\r\n',
  'Subject: s\r\n \r\n\r\nbody',
  'Subject: s\r\n\x00bad\r\n',
  'Subject:\r\nTo:x\r\n\r\n',
  `Received: ${'x'.repeat(5000)}\r\nSubject: long\r\n\r\n`,
  `From: a@b.test\r\n${'z'.repeat(5000)}\r\n`,
].map(m);

describe('HeaderEndScanner finds where headerEnd ends the header section, whatever the chunks', () => {
  it('one chunk, two chunks split at every position, one byte at a time', () => {
    for (const message of MESSAGES) {
      const want = headerEnd(message);
      const label = JSON.stringify(message.toString('latin1').slice(0, 60));
      expect(scan([message]).end, label).toEqual(want);
      for (let at = 0; at <= message.length; at++) expect(scan([message.subarray(0, at), message.subarray(at)]).end, `${label} split at ${at}`).toEqual(want);
      expect(scan([...message].map((b) => Buffer.from([b]))).end, `${label} byte by byte`).toEqual(want);
    }
  });

  it('random messages made of header lines, continuations, body lines and odd bytes, cut at random', () => {
    const random = seededRandom(20_260_511);
    const pieces = ['Subject: s', 'X-A : v', ' folded', '\tfolded', '', 'Dear Dr Smith,', 'Name', 'A:', ':', '\r', ' ', '\xe9t\xe9: x', 'Results attached.'];
    for (let n = 0; n < 3000; n++) {
      const lines = Array.from({ length: 1 + Math.floor(random() * 6) }, () => pieces[Math.floor(random() * pieces.length)]!);
      const eol = random() < 0.5 ? '\r\n' : '\n';
      const message = m(lines.join(eol) + (random() < 0.5 ? eol : ''));
      const chunks: Buffer[] = [];
      for (let at = 0; at < message.length; ) {
        const next = Math.min(message.length, at + 1 + Math.floor(random() * 5));
        chunks.push(message.subarray(at, next));
        at = next;
      }
      expect(scan(chunks).end, JSON.stringify(message.toString('latin1'))).toEqual(headerEnd(message));
    }
  });

  it('knows the end at the first byte that rules a line out, before that line ends: a long first body line is not held as a possible header', () => {
    const head = 'From: a@b.test\r\nSubject: s\r\n';
    const body = `Dear Dr Smith, ${'x'.repeat(1_000_000)}`;
    const chunks = [m(head + body.slice(0, 9)), m(body.slice(9, 70_000)), m(body.slice(70_000))];
    expect(scan(chunks)).toEqual({ end: { fields: head.length, body: head.length }, readWhenKnown: chunks[0]!.length });
  });

  it('a chunk that stops at a line end, every line a field, decides nothing (the next chunk may hold more fields)', () => {
    const s = new HeaderEndScanner();
    expect(s.push(m('Received: x\r\nFrom: a@b.test\r\n'))).toBeUndefined();
    expect(s.push(m('Subject: later\r\n\r\nbody'))).toEqual({ fields: 45, body: 47 });
  });
});
