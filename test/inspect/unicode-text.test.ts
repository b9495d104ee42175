import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../src/inspect/parse.js';
import { asciiDigit } from '../../src/inspect/unicode-digits.js';
import { foldForDetection } from '../../src/inspect/unicode-fold.js';
import { crlf, inspectRaw } from './inspect-raw.js';

/**
 * A number written with full-width or other-script digits, no-break spaces or Unicode
 * dashes reads as the number to anyone; in plain text as in HTML (one shared fold), in the
 * Subject and in any charset.
 */
const plain = (body: string, headers = 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit') => crlf(`From: dr@clinic.test\nSubject: note\n${headers}\n\n${body}\n`);

describe('plain text: look-alike digits, spaces and dashes read as ASCII', () => {
  const cases: Record<string, string> = {
    'full-width digits (U+FF10-FF19)': 'Patient SSN ５２４-１２-３４５６',
    'full-width digits and hyphen-minus (U+FF0D)': 'Patient SSN ５２４－１２－３４５６',
    'Arabic-Indic digits': 'Patient SSN ٥٢٤-١٢-٣٤٥٦',
    'extended Arabic-Indic (Persian) digits': 'Patient SSN ۵۲۴-۱۲-۳۴۵۶',
    'Devanagari digits with no-break spaces': 'Patient SSN ५२४\u00A0१२\u00A0३४५६',
    'mathematical bold digits (outside the BMP)': 'Patient SSN 𝟓𝟐𝟒-𝟏𝟐-𝟑𝟒𝟓𝟔',
    'non-breaking hyphen and en dash': 'Patient SSN 524\u201112\u20133456',
    'minus sign and narrow no-break space': 'Patient SSN 524\u221212\u202F3456',
    'a zero-width space inside the number': 'Patient SSN 524-12-34\u200B56',
    'an invisible tag character (U+E0020-E007F) inside the number': 'Patient SSN 524-12-34\u{E0041}56',
    'full-width letters as the context word': 'ＳＳＮ 524123456',
  };
  for (const [name, body] of Object.entries(cases)) {
    it(name, async () => expect(await inspectRaw(plain(body))).toEqual({ hits: ['ssn'], error: undefined, unscanned: undefined }));
  }

  it('in any charset: ISO-8859-1 no-break spaces, quoted-printable UTF-8, UTF-16', async () => {
    const latin1 = Buffer.concat([crlf('Subject: x\nContent-Type: text/plain; charset=iso-8859-1\n\n'), Buffer.from('Patient SSN 524\u00A012\u00A03456\r\n', 'latin1')]);
    const qp = plain('Patient SSN =EF=BC=95=EF=BC=92=EF=BC=94-12-3456', 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable');
    const utf16 = plain(Buffer.from('Patient SSN ５２４-１２-３４５６', 'utf16le').swap16().toString('base64'), 'Content-Type: text/plain; charset=utf-16be\nContent-Transfer-Encoding: base64');
    for (const raw of [latin1, qp, utf16]) expect((await inspectRaw(raw)).hits).toEqual(['ssn']);
  });

  it('in the Subject and in a text attachment', async () => {
    expect((await inspectRaw(crlf('From: dr@clinic.test\nSubject: =?UTF-8?B?' + Buffer.from('SSN ５２４-１２-３４５６').toString('base64') + '?=\n\nhello\n'))).hits).toEqual(['ssn']);
    const csv = crlf(`Subject: list\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee list\n--b\nContent-Type: text/csv; charset=utf-8; name=list.csv\nContent-Disposition: attachment\n\nname,ssn\nBob,٥٢٤-١٢-٣٤٥٦\n--b--\n`);
    expect((await inspectRaw(csv)).hits).toEqual(['ssn']);
  });

  it('in HTML too (the same fold), where digits of other scripts were not read before', async () => {
    const raw = plain('<p>Patient SSN <b>５２４</b>-１２-३४५६</p>', 'Content-Type: text/html; charset=utf-8');
    expect((await inspectRaw(raw)).hits).toEqual(['ssn']);
  });

  it('keeps plain text lines as they are: only the look-alike characters change', async () => {
    const r = await parseMessage(plain('Line one\u00A0a\nLine two ٣\n\nLast'));
    expect(r.texts.find((t) => t.source === 'text')?.text).toBe('Line one a\r\nLine two 3\r\n\r\nLast\r\n');
  });
});

describe('the digit table (unicode-digits.ts) against the engine', () => {
  it('every decimal digit (Nd) the engine knows folds to an ASCII digit, in order within its run of ten', () => {
    const isDigit = /\p{Nd}/u;
    const wrong: string[] = [];
    for (let cp = 0x80; cp < 0x20000; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      if (isDigit.test(c) !== (asciiDigit(cp) !== undefined) || (isDigit.test(c) && foldForDetection(c) !== asciiDigit(cp))) wrong.push(cp.toString(16));
    }
    expect(wrong).toEqual([]);
    expect(['٣', '۳', '३', '৩', '๓', '３', '𝟑', '𞥓'].map(foldForDetection).join('')).toBe('33333333');
    expect(foldForDetection('0123456789 ²½')).toBe('0123456789 ²½'); // ASCII digits stay; superscripts and fractions are no digits
  });

  it('text up to U+00FF (its own fast path) folds as the table says', () => {
    for (let unit = 0; unit <= 0xff; unit++) {
      const c = String.fromCharCode(unit);
      expect(foldForDetection(`${c}Ā`), `U+${unit.toString(16)}`).toBe(`${foldForDetection(c)}Ā`); // Ā (U+0100) takes the table path
    }
  });
});
