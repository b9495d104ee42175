import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../src/inspect/parse.js';
import { crlf, inspectRaw } from './inspect-raw.js';

// A script that forgot the blank line after its headers: every reader shows the last
// lines as the body, and the encryption puts them inside (protect/header-end.ts). The
// detectors must read them as text, not lose them as malformed header fields.
const broken = crlf('Received: from app by postern\nFrom: lab@org.test\nTo: patient@dest.test\nSubject: result\nPatient J. Smith DOB 1970-01-01: HIV positive, MRN 00123456\nPlease call us.\n');
const BODY = 'Patient J. Smith DOB 1970-01-01: HIV positive, MRN 00123456\r\nPlease call us.\r\n';

describe('body lines sent in the header section are inspected as the body', () => {
  it('as text of the message, held in memory or streamed; the header fields stay what they are', async () => {
    const streamed = Readable.from([broken.subarray(0, 70), broken.subarray(70, 100), broken.subarray(100)]);
    for (const parsed of [await parseMessage(broken), await parseMessage(streamed)]) {
      expect(parsed.texts).toEqual([
        { source: 'subject', text: 'result' },
        { source: 'text', text: BODY },
      ]);
      expect(Object.keys(parsed.headers)).toEqual(['received', 'from', 'to', 'subject']);
      expect(parsed.error).toBeUndefined();
    }
  });

  it('and so the detectors fire on them, also in a forwarded message (.eml) that lacks the blank line', async () => {
    const direct = await inspectRaw(broken);
    expect(direct).toEqual({ hits: ['dob', 'mrn'], error: undefined, unscanned: undefined });
    const forwarded = crlf(
      [
        'From: a@org.test',
        'Subject: fwd',
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain',
        '',
        'see attached',
        '--b',
        'Content-Type: message/rfc822',
        'Content-Disposition: attachment; filename="note.eml"',
        '',
        broken.toString('latin1').trimEnd(),
        '--b--',
        '',
      ].join('\n'),
    );
    expect(await inspectRaw(forwarded)).toEqual(direct);
  });
});
