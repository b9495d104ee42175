import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readHeaderBlock, WITHHELD_FIELD_VALUE } from '../../src/deliver/dsn.js';
import { createTestCa } from '../helpers/pki.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail } from '../helpers/smtp-client.js';

/**
 * A bounce returns the original's header fields (RFC 3464 text/rfc822-headers), and only
 * those: for a message sent without the blank line after its headers, its first body lines
 * are in the header section, and a report that returned them as headers carried body text
 * (a patient's results) back, in a report that may travel in clear. The section ends where
 * receivers end it (protect/header-end.ts).
 */
const s = scenario();

const HEAD = ['From: Dr Jones <dr.jones@client.test>', 'To: nobody@dest.test', 'Subject: Lab results', 'Message-ID: <lab-1@client.test>'];
const BODY = ['Dear Dr Smith,', 'John Doe, born 1970-01-01: HbA1c 9.1 %, HIV test positive.', 'Regards'];

/** The text/rfc822-headers part of a report. */
const returnedHeaders = (report: Buffer) => /Content-Type: text\/rfc822-headers\r\nContent-Transfer-Encoding: 7bit\r\n\r\n([\s\S]*?)\r\n--postern-dsn/.exec(report.toString('latin1'))?.[1];

describe('the original headers in a bounce, for a message without the blank line after its headers', () => {
  it('are its header fields, and no body line: with no blank line at all, and with one further down', async () => {
    const dest = await s.mx({ rcptReply: () => [550, '5.1.1 User unknown'] });
    // Reports go to the sender over verified TLS (rule dsn): the sender's MX has a certificate the gateway trusts.
    const ca = createTestCa('Sender MX CA');
    const senderMx = await s.mx({ tls: ca.issue(['127.0.0.1']) });
    const gw = await s.gateway({ delivery: { tls: { trust: [ca.caFile] }, routes: { 'dest.test': { nexthop: `127.0.0.1:${dest.port}`, tls: 'none' }, 'client.test': { nexthop: `127.0.0.1:${senderMx.port}`, tls: 'none' } } } });
    const messages = [
      [...HEAD, ...BODY],
      [...HEAD, ...BODY, '', 'PS: see the attachment.'],
    ];
    for (const lines of messages) expect((await sendMail(gw.port, { from: 'dr.jones@client.test', to: ['nobody@dest.test'], raw: `${lines.join('\r\n')}\r\n` })).ok).toBe(true);
    await senderMx.waitFor(2);
    for (const report of senderMx.messages) {
      const headers = returnedHeaders(report.raw);
      expect(headers, report.raw.toString('latin1')).toBeDefined();
      expect(headers).toMatch(/^Received: from /);
      // The detectors find PHI in the body, so the report withholds the subject (bounce.ts sentProtected).
      expect(headers).toContain(`\r\n${HEAD.map((f) => (f.startsWith('Subject:') ? `Subject: ${WITHHELD_FIELD_VALUE}` : f)).join('\r\n')}\r\n`);
      for (const line of [...BODY, 'PS: see the attachment.']) expect(headers, headers).not.toContain(line);
    }
  });
});

describe('readHeaderBlock', () => {
  const message = Buffer.from(`${[...HEAD, ...BODY].join('\r\n')}\r\n`);
  const fields = `${HEAD.join('\r\n')}\r\n`;
  const inChunks = (m: Buffer, at: number[]) => Readable.from([0, ...at].map((from, i) => m.subarray(from, [...at, m.length][i])), { objectMode: false });

  it('ends the header fields at the first line that is no field, wherever the chunks are cut', async () => {
    for (let at = 0; at <= message.length; at++) expect((await readHeaderBlock(inChunks(message, [at]))).toString('latin1'), `cut at ${at}`).toBe(fields);
  });

  it('keeps its limit: whole header lines only, never a body line', async () => {
    const long = Buffer.from(`${HEAD.join('\r\n')}\r\n${'X-Filler: 0123456789\r\n'.repeat(100)}Dear Dr Smith,\r\n`);
    const block = (await readHeaderBlock(inChunks(long, [500, 1000]), 1000)).toString('latin1');
    expect(block.length).toBeLessThanOrEqual(1000);
    expect(block.endsWith('X-Filler: 0123456789\r\n')).toBe(true);
    expect((await readHeaderBlock(inChunks(Buffer.from(`${HEAD[0]}\r\nDear Dr Smith,\r\n`), []), 20)).toString('latin1')).toBe('');
  });
});
