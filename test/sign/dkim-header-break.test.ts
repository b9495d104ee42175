import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/events/logger.js';
import { DkimSigner } from '../../src/sign/dkim.js';
import { loadDkimKeys } from '../../src/sign/dkim-keys.js';
import { validateConfig } from '../../src/config/load.js';
import { peekHeaders } from '../../src/sign/peek-headers.js';
import { prependHeader } from '../../src/sign/prepend.js';
import { dkimConfig, mailauthVerify, makeDkimKey, opendkimPrograms, opendkimVerify } from '../helpers/dkim.js';

// A message whose sender left out the blank line after its headers: mailauth's signer
// hashes nothing until it sees one, so such mail was never signed and never delivered
// (dkim.failed, deferred until it bounced). It is now signed and sent with the line.

const opendkim = opendkimPrograms();
const key = makeDkimKey('client.test', 'sel1');
const HEAD = ['From: cron <cron@client.test>', 'To: ops@dest.test', 'Subject: nightly job ok', 'Date: Tue, 01 Dec 2026 03:00:00 +0000', 'Message-ID: <n1@client.test>'];
const crlf = (...lines: string[]) => Buffer.from(lines.join('\r\n'));

const CASES = {
  'header-only': { raw: crlf(...HEAD, ''), sent: crlf(...HEAD, '', '') },
  'header-only, last line unended': { raw: crlf(...HEAD), sent: crlf(...HEAD, '', '') },
  'body lines in the header section': { raw: crlf(...HEAD, 'All 12 jobs ran.', 'See you tomorrow.', ''), sent: crlf(...HEAD, '', 'All 12 jobs ran.', 'See you tomorrow.', '') },
};

async function signer(): Promise<DkimSigner> {
  return new DkimSigner(await loadDkimKeys(validateConfig({ hostname: 'postern.test', dkim: dkimConfig([key]) })), createLogger('silent'));
}

/** A stream of the message cut at each of `cuts` (byte offsets). */
const chunked = (raw: Buffer, cuts: number[]) => Readable.from([0, ...cuts].map((at, i) => raw.subarray(at, [...cuts, raw.length][i])));

async function collect(stream: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('DKIM: a message without the blank line after its headers', () => {
  for (const [name, { raw, sent }] of Object.entries(CASES)) {
    it(`${name}: signed, and sent with the blank line it was signed with (Buffer and stream alike)`, async () => {
      const s = await signer();
      const fromBuffer = await s.sign(raw, { mailFrom: 'cron@client.test', queueId: 'q1' });
      expect(fromBuffer).toBeDefined();
      const outBuffer = prependHeader(fromBuffer!.header, raw) as Buffer;
      expect((await mailauthVerify(outBuffer, [key])).map((r) => r.status)).toEqual(['pass']);
      expect(outBuffer.subarray(fromBuffer!.header.length).toString('latin1')).toBe(sent.toString('latin1'));

      // Cut inside the header section and exactly at a line end, where a stream reader
      // cannot yet tell whether more fields follow.
      const cuts = [7, raw.indexOf('\r\nSubject') + 2];
      const fromStream = await s.sign(chunked(raw, cuts), { mailFrom: 'cron@client.test', queueId: 'q2' });
      const outStream = await collect(prependHeader(fromStream!.header, chunked(raw, cuts)) as Readable);
      expect((await mailauthVerify(outStream, [key])).map((r) => r.status)).toEqual(['pass']);
      if (opendkim) expect(opendkimVerify(opendkim, outStream, [key])).toEqual({ code: 0, stderr: '' });
      expect(outStream.subarray(fromStream!.header.length).toString('latin1')).toBe(sent.toString('latin1'));
    });
  }

  it('a message that has its blank line goes out byte for byte as it came', async () => {
    const raw = crlf(...HEAD, '', 'body', '');
    const s = await signer();
    const signed = await s.sign(raw, { mailFrom: 'cron@client.test', queueId: 'q3' });
    expect((prependHeader(signed!.header, raw) as Buffer).subarray(signed!.header.length)).toEqual(raw);
    const streamed = await collect(prependHeader(signed!.header, chunked(raw, [9, 20])) as Readable);
    expect(streamed.subarray(signed!.header.length)).toEqual(raw);
  });

  it('a stream cut at a line end before the From: the From domain signs, not the envelope sender', async () => {
    const raw = crlf('Received: from app.client.test by postern.test', ...HEAD, '', 'body', '');
    const s = await signer();
    // The envelope sender's domain has no key: signed only when the From is found.
    const signed = await s.sign(chunked(raw, [raw.indexOf('\r\nFrom') + 2]), { mailFrom: 'bounces@other.test', queueId: 'q4' });
    expect(signed?.domain).toBe('client.test');
    // peekHeaders itself, on such a stream: the header block runs past the cut.
    const peeked = await peekHeaders(chunked(raw, [raw.indexOf('\r\nFrom') + 2]));
    expect(peeked.headers).toContain('From: cron <cron@client.test>');
    expect(await collect(peeked.stream)).toEqual(raw);
  });
});
