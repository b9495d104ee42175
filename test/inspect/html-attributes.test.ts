import { describe, expect, it } from 'vitest';
import { htmlToPlainText as text } from '../../src/inspect/html-text.js';
import { crlf, inspectRaw } from './inspect-raw.js';

/**
 * Image alt text is what a reader sees where an image is not loaded (the default of many
 * mail clients), title text what they see on hover: both are read by the detectors, as
 * words of their own at the end of their block, so the text around them reads as before.
 */
const html = (body: string) => crlf(`From: dr@clinic.test\nSubject: note\nContent-Type: text/html; charset=utf-8\n\n${body}\n`);

describe('HTML: alt and title text reaches the detectors', () => {
  it('an SSN only in an image alt text is found', async () => {
    const raw = html('<p>Lab results attached <img src="cid:scan01" alt="Patient SSN 524-12-3456" width="600"></p>');
    expect(await inspectRaw(raw)).toEqual({ hits: ['ssn'], error: undefined, unscanned: undefined });
  });

  it('an MRN only in a title attribute is found', async () => {
    expect((await inspectRaw(html('<p>Open <a href="https://ehr.example/r/1" title="MRN: 00123456">the record</a>.</p>'))).hits).toEqual(['mrn']);
  });
});

describe('HTML text: which attributes, and where', () => {
  it.each([
    ['<p>a <img alt="b"> c</p>d', 'a c b d'], // at the end of the block
    ['<IMG ALT=123-45-6788>', '123-45-6788'], // unquoted, any case
    ["<img src=x alt='x>y'/>z", 'z x>y'],
    ['<img alt="123&#8209;45&ndash;6788">', '123-45-6788'], // references decoded, dashes folded
    ['<area alt="a"><input type="image" alt="b">', 'a b'],
    ['<div alt="not shown">x</div>', 'x'], // alt only where an image can be
    ['<span title="t1">a</span><b title=t2>b</b>', 'ab t1 t2'],
    ['<p>x</p title="end tags have none">', 'x'],
    ['<img alt="">x', 'x'],
    ['text <img alt="never closed>ssn 123-45-6788', 'text'], // the tag runs to the end, as in a browser
  ])('%s', (input, want) => expect(text(input)).toBe(want));

  it('text around an image or a titled element reads as it did: a number they sit in stays whole', () => {
    expect(text('ssn 123-45-67<img src=x alt="logo">88')).toBe('ssn 123-45-6788 logo');
    expect(text('ssn 123-<span title="t">45</span>-6788')).toBe('ssn 123-45-6788 t');
  });
});
