import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { headerEnd } from '../../src/protect/header-end.js';
import { splitEntity } from '../../src/protect/mime-entity.js';
import { removeSubjectTag } from '../../src/protect/subject-tag.js';
import { headerBlockOf, peekHeaders } from '../../src/sign/peek-headers.js';
import { senderDomain } from '../../src/sign/sender-domain.js';

const crlf = (...lines: string[]) => Buffer.from(lines.join('\r\n'));
const text = async (r: Readable) => {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('latin1');
};

describe('where the header section ends (RFC 5322 §2.1, §3.6.8)', () => {
  it('at the blank line when every line before it is a header field or a folded continuation', () => {
    const m = crlf('Subject: a', '  folded', 'X-Odd_Name!: v', 'Obs-Space : v', '', 'body');
    expect(headerEnd(m)).toEqual({ fields: m.indexOf('\r\n\r\n') + 2, body: m.indexOf('\r\n\r\n') + 4 });
  });

  it('at the first line that is neither: a space or 8-bit byte in the name, no colon, a continuation with nothing before it', () => {
    for (const line of ['Patient J. Smith: HIV positive', 'Please call us.', 'Müller: 5,4 mmol/l', ': empty name']) {
      const m = crlf('From: a@b.test', 'Subject: s', line, 'To: c@d.test', '', 'more');
      const at = m.indexOf(Buffer.from(line));
      expect(headerEnd(m), line).toEqual({ fields: at, body: at });
    }
    expect(headerEnd(crlf(' indented first line', 'Subject: s', ''))).toEqual({ fields: 0, body: 0 });
  });

  it('a message that is all header fields ends with them; a stream start is undecided until a whole line decides', () => {
    const all = crlf('Subject: s', 'From: a@b.test');
    expect(headerEnd(all)).toEqual({ fields: all.length, body: all.length });
    expect(headerEnd(all, false)).toBeUndefined();
    expect(headerEnd(crlf('Subject: s', 'no header here'), false)).toBeUndefined();
    expect(headerEnd(crlf('Subject: s', 'no header here', ''), false)).toEqual({ fields: 12, body: 12 });
    // Stopping at a line end decides nothing either: the next chunk may hold more fields.
    expect(headerEnd(crlf('Received: x', 'From: a@b.test', ''), false)).toBeUndefined();
  });

  it('a stream chunk that ends at a line end inside the header section does not end it: a Subject in the next chunk still loses its tag', async () => {
    const stream = Readable.from([Buffer.from('Received: from app by postern\r\n'), Buffer.from('Subject: [secure] results\r\n\r\nbody\r\n')]);
    expect(await text(removeSubjectTag(stream, '[secure]') as Readable)).toBe('Received: from app by postern\r\nSubject: results\r\n\r\nbody\r\n');
  });
});

describe('every splitter of outgoing content ends the header section there', () => {
  const broken = crlf('Subject: [secure] results', 'Lab note for J. Smith', 'From: someone@elsewhere.test', 'Subject: [secure] kept', '', 'rest', '');

  it('splitEntity: the lines from the first non-header line on are the body, inside the entity', () => {
    const { outer, entity } = splitEntity(broken);
    expect(outer).toEqual(['Subject: [secure] results']);
    expect(entity.toString('latin1')).toBe('Content-Type: text/plain; charset=us-ascii\r\n\r\nLab note for J. Smith\r\nFrom: someone@elsewhere.test\r\nSubject: [secure] kept\r\n\r\nrest\r\n');
  });

  it('subject tag removal: the header Subject loses the tag, buffer and stream alike, with or without the blank line; body lines are untouched', async () => {
    const want = broken.toString('latin1').replace('Subject: [secure] results', 'Subject: results');
    expect((removeSubjectTag(broken, '[secure]') as Buffer).toString('latin1')).toBe(want);
    expect(await text(removeSubjectTag(Readable.from([broken.subarray(0, 20), broken.subarray(20)]), '[secure]') as Readable)).toBe(want);
    const noBlank = crlf('Subject: [secure] results', 'From: a@b.test');
    expect((removeSubjectTag(noBlank, '[secure]') as Buffer).toString('latin1')).toBe('Subject: results\r\nFrom: a@b.test');
    expect(await text(removeSubjectTag(Readable.from([noBlank]), '[secure]') as Readable)).toBe('Subject: results\r\nFrom: a@b.test');
  });

  it('the sender domain (whose identity and DKIM key sign) comes from the header From, never a From line of the body', async () => {
    expect(headerBlockOf(broken)).toBe('Subject: [secure] results\r\n');
    expect(senderDomain(headerBlockOf(broken), 'app@org.test')).toBe('org.test');
    const peeked = await peekHeaders(Readable.from([broken.subarray(0, 30), broken.subarray(30)]));
    expect(peeked.headers).toBe('Subject: [secure] results\r\n');
    expect(await text(peeked.stream)).toBe(broken.toString('latin1'));
  });
});
