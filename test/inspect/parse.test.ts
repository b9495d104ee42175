import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { detectorsConfigSchema } from '../../src/inspect/detectors/index.js';
import { inspectMessage } from '../../src/inspect/inspector.js';
import { DEFAULT_INSPECT_LIMITS, parseMessage } from '../../src/inspect/parse.js';

const crlf = (lines: string[]) => Buffer.from(lines.join('\r\n'));

const sample = crlf([
  'From: "Dr. A" <a@client.test>',
  'To: b@dest.test',
  'Subject: =?UTF-8?Q?Lab_results_[secure]_caf=C3=A9?=',
  'Message-ID: <x@client.test>',
  'X-Classification: Confidential',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b1"',
  '',
  '--b1',
  'Content-Type: multipart/alternative; boundary="b2"',
  '',
  '--b2',
  'Content-Type: text/plain; charset=iso-8859-1',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Patient SSN 524-12-345=',
  '6 na=EFve',
  '--b2',
  'Content-Type: text/html',
  '',
  '<p>Hello <b>there</b><script>alert(1)</script> &amp; bye</p>',
  '--b2--',
  '--b1',
  'Content-Type: text/csv; name="labs.csv"',
  'Content-Disposition: attachment; filename="labs.csv"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('mrn,value\nMRN 00123456,5\n').toString('base64'),
  '--b1',
  'Content-Type: application/pdf',
  'Content-Disposition: attachment; filename="scan.pdf"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.alloc(3000, 1).toString('base64'),
  '--b1--',
  '',
]);

describe('message inspection', () => {
  it('reads headers, decoded text, HTML text and attachments in one pass', async () => {
    for (const body of [sample, Readable.from([sample.subarray(0, 100), sample.subarray(100, 777), sample.subarray(777)])]) {
      const r = await parseMessage(body);
      expect(r.error).toBeUndefined();
      expect(r.subject).toBe('Lab results [secure] café');
      expect(r.from).toBe('"Dr. A" <a@client.test>');
      expect(r.messageId).toBe('<x@client.test>');
      expect(r.headers['x-classification']).toEqual(['Confidential']);
      const bySource = Object.fromEntries(r.texts.map((t) => [t.source, t.text]));
      expect(bySource.subject).toBe('Lab results [secure] café');
      expect(bySource.text).toContain('SSN 524-12-3456 naïve');
      expect(bySource.html).toBe('Hello there & bye');
      expect(bySource.attachment).toContain('MRN 00123456');
      expect(r.attachments).toEqual([
        { filename: 'labs.csv', contentType: 'text/csv', size: 25 },
        { filename: 'scan.pdf', contentType: 'application/pdf', size: 3000 },
      ]);
      expect(r.parts).toBe(6);
    }
  });

  it('stops a nesting bomb with a clear reason', async () => {
    let nested = 'Content-Type: text/plain\r\n\r\nx\r\n';
    for (let i = 0; i < 60; i++) nested = `Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n${nested}\r\n--n${i}--\r\n`;
    const r = await parseMessage(Buffer.from(`Subject: bomb\r\n${nested}`));
    expect(r.error).toMatch(/nested deeper than 20 levels/);
  });

  it('stops a part-count bomb with a clear reason', async () => {
    const parts = Array.from({ length: 800 }, () => '--b\r\nContent-Type: text/plain\r\n\r\nx\r\n').join('');
    const r = await parseMessage(Buffer.from(`Subject: many\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n${parts}--b--\r\n`));
    expect(r.error).toMatch(/more than 500 MIME parts/);
  });

  it('keeps the texts in the message order, whatever their transfer encoding', async () => {
    const msg = crlf([
      'Subject: order',
      'Content-Type: multipart/mixed; boundary="o"',
      '',
      '--o',
      'Content-Type: text/plain',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('first, base64 '.repeat(400)).toString('base64'),
      '--o',
      'Content-Type: text/plain',
      '',
      'second, 7bit',
      '--o',
      'Content-Type: text/html',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      '<p>third, =\r\nqp</p>',
      '--o--',
      '',
    ]);
    for (const body of [msg, Readable.from([msg.subarray(0, 50), msg.subarray(50)])]) {
      const r = await parseMessage(body);
      expect(r.texts.map((t) => [t.source, t.text.slice(0, 12)])).toEqual([
        ['subject', 'order'],
        ['text', 'first, base6'],
        ['text', 'second, 7bit'],
        ['html', 'third, qp'],
      ]);
    }
  });

  it('counts the detectors in the inspection deadline: out of time is an inspection error', async () => {
    const message = Buffer.from('Subject: x\r\n\r\nSSN 524-12-3456\r\n');
    const detectors = detectorsConfigSchema.parse({});
    const inTime = await inspectMessage(message, message.length, detectors);
    expect([inTime.error, inTime.detectors.score]).toEqual([undefined, 5]);
    // A deadline already past when the detectors start (the parse of a held message is synchronous).
    const late = await inspectMessage(message, message.length, detectors, { ...DEFAULT_INSPECT_LIMITS, timeoutMs: -1 });
    expect(late.error).toMatch(/the detectors did not finish within the inspection deadline \(-1 ms\)/);
  });

  it('configured patterns that backtrack for hours on V8 finish within the deadline (RE2)', async () => {
    // (a|aa)+$ on 60 a's and a b: ~1.4× longer per character on V8, an hour and more.
    const message = Buffer.from(`Subject: ${'a'.repeat(60)}b\r\n\r\n${'a'.repeat(60)}b\r\n${'a'.repeat(500)}!\r\n`);
    const detectors = detectorsConfigSchema.parse({ custom: [{ name: 'alt', pattern: '(a|aa)+$' }, { name: 'dots', pattern: '.*.*.*=' }] });
    const limits = { ...DEFAULT_INSPECT_LIMITS, timeoutMs: 2000 };
    const t0 = Date.now();
    const facts = await inspectMessage(message, message.length, detectors, limits);
    expect(Date.now() - t0).toBeLessThan(limits.timeoutMs + 500);
    expect([facts.error, facts.detectors.hits.map((h) => h.detector)]).toEqual([undefined, []]);
  });

  it('bounds the text kept for detectors', async () => {
    const big = Buffer.from(`Subject: big\r\n\r\n${'word '.repeat(100_000)}\r\n`);
    const r = await parseMessage(big, { ...DEFAULT_INSPECT_LIMITS, maxDepth: 20, maxParts: 500, maxTextBytes: 1000, maxHeaderBytes: 65536, timeoutMs: 5000 });
    expect(r.texts.find((t) => t.source === 'text')?.text.length).toBe(1000);
  });
});

describe('a body that fails while it is read', () => {
  it('rejects with the read error (the attempt is deferred), neither a MIME verdict nor an unhandled error event', async () => {
    const failure = new Error('Reached the max retries per request limit (which is 0)');
    async function* failing() {
      yield Buffer.from('Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nfirst part\r\n');
      await new Promise((r) => setTimeout(r, 10));
      throw failure;
    }
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      await expect(parseMessage(Readable.from(failing(), { objectMode: false }))).rejects.toBe(failure);
      await expect(inspectMessage(Readable.from(failing(), { objectMode: false }), 100, detectorsConfigSchema.parse({}))).rejects.toBe(failure);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught).toEqual([]);
  });
});

/**
 * A single-part message held in memory skips the splitter's walk over its body (see
 * parseMessage). Streamed, the same bytes always go through the splitter: both must give
 * the same result, byte for byte, on every shape of one-part message.
 */
describe('single-part fast path agrees with the splitter', () => {
  const b64 = Buffer.from('Patient DOB 03/14/1975, SSN 524-12-3456\r\n').toString('base64');
  const cases: Record<string, string> = {
    'plain, no MIME headers': 'From: a@x.test\r\nSubject: hi\r\n\r\nline one\r\nline two 524-12-3456\r\n',
    'LF line endings': 'From: a@x.test\nSubject: lf\n\nbody\nmore\n',
    'no header at all': '\r\nonly a body\r\n',
    'quoted-printable latin1': 'Subject: =?ISO-8859-1?Q?caf=E9?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve SSN 524-12-=\r\n3456\r\n',
    'base64 text': `Subject: b64\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n`,
    'html body': 'Subject: h\r\nContent-Type: text/html\r\n\r\n<p>Hi <b>there</b><script>x()</script></p>\r\n',
    'a lone attachment': `Subject: pdf\r\nContent-Type: application/pdf; name="scan.pdf"\r\nContent-Disposition: attachment; filename="scan.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.alloc(3000, 7).toString('base64')}\r\n`,
    'a lone text-like attachment': `Subject: csv\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename="labs.csv"\r\n\r\nmrn,value\r\nMRN 00123456,5\r\n`,
    'folded and encoded headers': 'Subject: =?UTF-8?B?TGFiIHJlc3VsdHM=?=\r\n  continued\r\nX-Tag: one\r\nX-Tag: two\r\nMessage-ID: <id@x.test>\r\n\r\nbody\r\n',
    'empty body': 'Subject: nothing\r\n\r\n',
    'no body separator (all header)': 'Subject: only headers\r\nX-A: b\r\n',
    'embedded message at the root': 'Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n',
    multipart: 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\npart\r\n--b--\r\n',
    'unknown charset': 'Content-Type: text/plain; charset=x-unknown-thing\r\n\r\nSSN 524-12-3456\r\n',
    'trailing text without newline': 'Subject: t\r\n\r\nno final newline',
  };
  for (const [name, text] of Object.entries(cases)) {
    it(name, async () => {
      const bytes = Buffer.from(text);
      const fast = await parseMessage(bytes);
      const split = await parseMessage(Readable.from([bytes.subarray(0, 7), bytes.subarray(7)]));
      expect(fast).toEqual(split);
    });
  }

  it('a header block over the limit fails the same way on both paths', async () => {
    const bytes = Buffer.from(`Subject: big\r\n${'X-Pad: y\r\n'.repeat(2000)}\r\nbody\r\n`);
    const limits = { ...DEFAULT_INSPECT_LIMITS, maxDepth: 20, maxParts: 500, maxTextBytes: 1 << 20, maxHeaderBytes: 64 * 1024, timeoutMs: 5000 };
    const fast = await parseMessage(bytes, limits);
    expect(fast.error).toMatch(/header size/i);
    expect(fast).toEqual(await parseMessage(Readable.from([bytes]), limits));
  });
});
