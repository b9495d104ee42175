import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../src/inspect/parse.js';

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

  it('bounds the text kept for detectors', async () => {
    const big = Buffer.from(`Subject: big\r\n\r\n${'word '.repeat(100_000)}\r\n`);
    const r = await parseMessage(big, { maxDepth: 20, maxParts: 500, maxTextBytes: 1000, maxHeaderBytes: 65536, timeoutMs: 5000 });
    expect(r.texts.find((t) => t.source === 'text')?.text.length).toBe(1000);
  });
});
