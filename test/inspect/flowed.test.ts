import { describe, expect, it } from 'vitest';
import { unflow } from '../../src/inspect/flowed.js';
import { crlf, inspectRaw } from './inspect-raw.js';

/**
 * format=flowed (RFC 3676): a line ending in a space continues on the next line. A client
 * wrapping a long line there can cut a number in two; its reader sees the number whole, so
 * the detectors must too.
 */
const flowed = (params: string, body: string, encoding = '7bit') =>
  crlf(`From: dr@clinic.test\nSubject: note\nContent-Type: text/plain; charset=utf-8; format=flowed${params}\nContent-Transfer-Encoding: ${encoding}\n\n${body}`);

describe('format=flowed text is read with its soft line breaks joined', () => {
  it('delsp=yes: an SSN cut after its hyphen (`524-12-` SP CRLF `3456`) is found', async () => {
    expect(await inspectRaw(flowed('; delsp=yes', 'Patient SSN 524-12- \n3456 on file.\n'))).toEqual({ hits: ['ssn'], error: undefined, unscanned: undefined });
  });

  it('delsp=no: the space before the break stays, so a card cut between its groups is found', async () => {
    expect(await inspectRaw(flowed('', 'Card on file 4111 1111 \n1111 1111 for the copay.\n'))).toEqual({ hits: ['card'], error: undefined, unscanned: undefined });
  });

  it('quoted-printable (the trailing space written =20) and quoted lines (`> `), as mail clients send them', async () => {
    expect((await inspectRaw(flowed('; delsp=yes', 'Patient SSN 524-12-=20\n3456\n', 'quoted-printable'))).hits).toEqual(['ssn']);
    expect((await inspectRaw(flowed('; DelSp="Yes"', '> Patient SSN 524-12- \n> 3456\n'))).hits).toEqual(['ssn']);
  });

  it('text/plain without format=flowed keeps its line breaks: nothing is joined', async () => {
    const raw = crlf('Subject: note\nContent-Type: text/plain\n\nPatient SSN 524-12- \n3456\n');
    expect((await inspectRaw(raw)).hits).toEqual([]);
  });
});

describe('unflow', () => {
  it('returns a text without a soft break as it is', () => {
    const text = 'line one\r\nline two\r\n';
    expect(unflow(text, true)).toBe(text);
  });

  it.each([
    ['delsp: the space goes', 'a 123- \r\n45\r\nb', true, 'a 123-45\r\nb'],
    ['no delsp: the space stays', 'a 123- \r\n45\r\nb', false, 'a 123- 45\r\nb'],
    ['LF line ends', 'a1 \nb2 \nc3\n', true, 'a1b2c3\n'],
    ['a paragraph over three lines', 'one \r\ntwo \r\nthree\r\nfour', false, 'one two three\r\nfour'],
    ['quote markers and stuffing of the continuation go', '>> 12- \r\n>> 34\r\n', true, '>> 12-34\r\n'],
    ['a change of quote depth ends the paragraph', '> 12- \r\n34\r\n', true, '> 12- \r\n34\r\n'],
    ['the signature separator is never flowed', 'Dr. A \r\n-- \r\n555-0100', false, 'Dr. A -- \r\n555-0100'],
    ['an empty line ends the paragraph (RFC 3676 §4.2)', 'a1 \r\n\r\n2', true, 'a1\r\n2'],
    ['a space-stuffed continuation loses its stuffing', 'a \r\n From b', false, 'a From b'],
  ])('%s', (_, text, delSp, want) => expect(unflow(text, delSp)).toBe(want));
});
