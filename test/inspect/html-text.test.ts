import { describe, expect, it } from 'vitest';
import { detectorsConfigSchema, runDetectors } from '../../src/inspect/detectors/index.js';
import { htmlToPlainText as text } from '../../src/inspect/html-text.js';

const SSN = '123-45-6788';
const config = detectorsConfigSchema.parse({});
/** Detector names that fire on the text of `html`. */
const detected = (html: string) => runDetectors([{ source: 'html', text: text(html) }], config).hits.map((h) => h.detector);

describe('HTML text: inline elements add no space, block elements do', () => {
  it.each([
    ['123-<span>45</span>-6788', '123-45-6788'],
    ['67<span></span>88', '6788'],
    ['1EG4-<b>TE5</b>-MK73', '1EG4-TE5-MK73'],
    ['1<i>2</i><u>3</u>-<em>4</em><strong>5</strong>-<a href="x">6</a><font color=red>7</font><small>8</small><sub>8</sub>', '123-45-6788'],
    ['12<wbr>3<code>4</code><mark>5</mark><abbr>6</abbr><s>7</s><ins>8</ins><del>9</del><q>0</q><label>1</label><bdi>2</bdi><bdo dir=ltr>3</bdo>', '1234567890123'],
    ['12<o:p>3</o:p><custom-tag>4</custom-tag><x y=z>5</x>', '12345'], // unknown tags are inline
    ['12<script>x</script>34<style>p{}</style>56', '123456'], // hidden content leaves no gap
    ['12<!-- c -->34', '1234'],
  ])('%s', (html, want) => expect(text(html)).toBe(want));

  it.each([
    ['a<p>b</p>c', 'a b c'],
    ['a<br>b<br/>c', 'a b c'],
    ['<div>a</div><div>b</div>', 'a b'],
    ['<ul><li>a</li><li>b</li></ul>', 'a b'],
    ['<table><tr><td>a</td><td>b</td></tr><tr><th>c</th></tr></table>', 'a b c'],
    ['<h1>a</h1><h6>b</h6><blockquote>c</blockquote><pre>d</pre>e<hr>f', 'a b c d e f'],
    ['<section>a</section><article>b</article><header>c</header><footer>d</footer><dl><dt>e</dt><dd>f</dd></dl>', 'a b c d e f'],
    ['<P>a</P><DIV>b</DIV>', 'a b'],
  ])('%s', (html, want) => expect(text(html)).toBe(want));

  it('an SSN or MBI split by inline tags is detected', () => {
    expect(detected(`<p>ssn 123-<span>45</span>-6788</p>`)).toContain('ssn');
    expect(detected(`<p>ssn 123-45-67<span></span>88</p>`)).toContain('ssn');
    expect(detected(`<p>Medicare 1EG4-<b>TE5</b>-MK73</p>`)).toContain('mbi');
  });
});

describe('HTML text: a "<" that starts no markup is text', () => {
  it.each([
    [`a < b ssn ${SSN}`, `a < b ssn ${SSN}`],
    [`3 <5 ssn ${SSN}`, `3 <5 ssn ${SSN}`],
    [`x <= y <-> z << ssn ${SSN}`, `x <= y <-> z << ssn ${SSN}`],
    [`a <1b ssn ${SSN}`, `a <1b ssn ${SSN}`],
    [`ends with </`, `ends with </`],
  ])('%s', (html, want) => expect(text(html)).toBe(want));

  it('markup after a text "<" is still markup', () => expect(text(`a < b <b>ssn</b> ${SSN}`)).toBe(`a < b ssn ${SSN}`));
  it('an SSN after a text "<" is detected', () => expect(detected(`<p>3 <5 ssn ${SSN}</p>`)).toContain('ssn'));
});

describe('HTML text: markup declarations and comments end where a browser ends them', () => {
  it.each([
    [`<!-->ssn ${SSN}<!-- -->`, `ssn ${SSN}`],
    [`<!--->ssn ${SSN}<!-- -->`, `ssn ${SSN}`],
    [`<!---->ssn ${SSN}`, `ssn ${SSN}`],
    [`a<!-- x -->b`, 'ab'],
    [`a<!-- x --!>b`, 'ab'],
    [`a<!-- x -- y ---->b`, 'ab'],
    [`a<!--!>hidden-->b`, 'ab'],
    [`a<!-- note ssn ${SSN}`, 'a'], // unclosed: the rest is a comment, as in a browser
    [`<!DOCTYPE html><p>ssn ${SSN}</p>`, `ssn ${SSN}`],
    [`<?xml version="1.0"?><p>ssn ${SSN}</p>`, `ssn ${SSN}`],
    [`<![CDATA[ x ]]><p>ssn ${SSN}</p>`, `ssn ${SSN}`],
    ['a</>b</ 1>c', 'abc'],
  ])('%s', (html, want) => expect(text(html)).toBe(want));
});

describe('HTML text: script and style by whole tag name', () => {
  it.each([
    [`<styles>ssn ${SSN}</styles>`, `ssn ${SSN}`],
    [`<stylesheet>ssn ${SSN}</stylesheet>`, `ssn ${SSN}`],
    [`<scriptx>ssn ${SSN}</scriptx>`, `ssn ${SSN}`],
    [`<style>p{}</style>ssn ${SSN}`, `ssn ${SSN}`],
    [`<style type="text/css">p{}</stylex></style >ssn ${SSN}`, `ssn ${SSN}`],
    [`a<SCRIPT>x</p>y</ScRiPt>b`, 'ab'],
    [`<p>hi</p><script>x</p><p>ssn ${SSN}</p>`, 'hi'], // unclosed script hides the rest, as in a browser
    [`<noscript>ssn ${SSN}</noscript>`, `ssn ${SSN}`], // mail clients run no scripts: shown
    [`<template>ssn ${SSN}</template>`, `ssn ${SSN}`], // read anyway: only adds matches
    [`<title>ssn &#49;23-45-6788</title>`, `ssn ${SSN}`], // shown in the tab
    [`<textarea>ssn <b>${SSN}</b></textarea>`, `ssn <b>${SSN}</b>`], // text only, as displayed
    [`<xmp>ssn &amp; <i>x</i></xmp>`, 'ssn &amp; <i>x</i>'],
  ])('%s', (html, want) => expect(text(html)).toBe(want));

  it('an SSN inside <styles> or <scriptx> is detected', () => {
    expect(detected(`<styles>ssn ${SSN}</styles>`)).toContain('ssn');
    expect(detected(`<scriptx>ssn ${SSN}</scriptx>`)).toContain('ssn');
  });
});

describe('HTML text: tags and attributes', () => {
  it.each([
    [`<p title="a>b">ssn ${SSN}</p>`, `a>b ssn ${SSN}`], // the title is read too (see html-attributes.test.ts)
    [`<p title='a>b' data-x=1>ssn ${SSN}</p>`, `a>b ssn ${SSN}`],
    [`<p = "x>ssn ${SSN}</p>`, `ssn ${SSN}`], // a quote not after '=' opens no value
    [`<p a="x"b="y>">ssn</p>`, 'ssn'],
    [`<img alt="x"/>ssn ${SSN}`, `ssn ${SSN} x`], // alt text at the end of its block
    [`text <p title="never closed>ssn ${SSN}`, 'text'], // the tag runs to the end, as in a browser
  ])('%s', (html, want) => expect(text(html)).toBe(want));
});

describe('HTML text: character references per HTML5', () => {
  it.each([
    ['12&#51-45-6788', SSN],
    ['12&#51;-45-6788', SSN],
    ['12&#x33;-45-6788', SSN],
    ['12&#X33-45-6788', SSN],
    ['123&#0000045;45&#45;6788', SSN],
    ['123&#x2D;45&#X2d;6788', SSN],
    ['&#49 23', '1 23'],
    ['123&nbsp;45&nbsp;6788', '123 45 6788'],
    ['123&nbsp45&nbsp6788', '123 45 6788'], // legacy name without ';'
    ['123&NBSP;45&NBSP;6788', '123 45 6788'], // not HTML5, but a reader reads a space
    ['a &amp b &lt c &gt d &quot e &copy f &reg g', 'a & b < c > d " e © f ® g'],
    ['&AMP; &LT; &GT; &QUOT; &COPY; &REG;', '& < > " © ®'],
    ['&apos; &period;&colon;&sol;&num;&plus;&lpar;&rpar;&lsqb;&rsqb; &middot;&bull;&hellip;', "' .:/#+()[] ·•…"],
    ['123&hyphen;45&dash;6788', SSN],
    ['1&ndash;2&mdash;3&minus;4', '1-2-3-4'],
    ['1&numsp;2&thinsp;3&ensp;4&emsp;5&hairsp;6', '1 2 3 4 5 6'],
    ['123-45-67&shy;88', SSN],
    ['123-45-67&shy88', SSN], // &shy without ';' is legacy too
    ['caf&eacute; M&uuml;ller &Eacute;', 'café Müller É'],
    ['&notit; &NOTIT; &zwsp; &bogus;', '¬it; &NOTIT; &zwsp; &bogus;'],
    ['&amp;#49;23', '&#49;23'], // decoded once
    ['&am<b></b>p; &#5<i></i>1-45', '&amp; \u00051-45'], // a tag ends a reference
    ['&#128;', '€'], // windows-1252 remapping, as HTML5
    ['&lt;b&gt;x&lt;/b&gt;', '<b>x</b>'], // decoded text is not read as markup
  ])('%s', (html, want) => expect(text(html)).toBe(want));

  it('an SSN written with references is detected', () => {
    expect(detected('<p>ssn 12&#51-45-6788</p>')).toContain('ssn');
    expect(detected('<p>ssn 123&nbsp45&nbsp6788</p>')).toContain('ssn');
    expect(detected('<p>ssn 123-45-67&shy;88</p>')).toContain('ssn');
    expect(detected('<p>ssn 123&hyphen;45&dash;6788</p>')).toContain('ssn');
  });
});

describe('HTML text: invisible characters and look-alike spaces and dashes', () => {
  it.each([
    ['123-45-67\u00AD88', SSN],
    ['123-45-67\u200B88', SSN],
    ['1\u200C2\u200D3-45-67\u206088\uFEFF', SSN],
    ['123-45-67&#8203;88', SSN],
    ['123-45-67&#x200E;88', SSN], // a bidi mark renders as nothing too
    ['123\u00A045\u00A06788', '123 45 6788'],
    ['1\u20002\u200A3\u202F4\u205F5\u30006', '1 2 3 4 5 6'],
    ['123\u201045\u20116788', SSN],
    ['1\u20122\u20133\u20144\u20155\u22126\uFE587\uFE638\uFF0D9', '1-2-3-4-5-6-7-8-9'],
    ['123&#8209;45&#8209;6788', SSN],
  ])('%j', (html, want) => expect(text(html)).toBe(want));

  it('a card split by a zero-width space is detected', () => {
    expect(detected('<p>card 4111 1111 1111&#8203; 1111</p>')).toContain('card');
  });
});

describe('HTML text: hostile input stays linear', () => {
  const MB = 1 << 20;
  it('1 MB of "<"', () => {
    const html = '<'.repeat(MB) + ` ssn ${SSN}`;
    expect(text(html)).toBe(`${'<'.repeat(MB)} ssn ${SSN}`);
  });

  it('1 MB of unclosed "<!--" fragments hides what a browser hides', () => {
    expect(text(`ssn ${SSN} ${'<!--x'.repeat(MB / 5)}`)).toBe(`ssn ${SSN}`);
  });

  it('many short comments before one far-away "--!>"', () => {
    const html = `${'<!---->a'.repeat(MB / 8)}<!-- x --!>ssn ${SSN}`;
    expect(text(html)).toBe(`${'a'.repeat(MB / 8)}ssn ${SSN}`);
  });

  it('many "</" inside a script that is never closed', () => {
    expect(text(`ssn ${SSN}<script>${'</scrip'.repeat(MB / 8)}`)).toBe(`ssn ${SSN}`);
  });

  it('bare "&#" between tags, and one tag with 1 MB of attributes', () => {
    expect(text(`${'<b>&#'.repeat(MB / 5)}ssn ${SSN}`)).toBe(`${'&#'.repeat(MB / 5)}ssn ${SSN}`);
    // One <p> whose attributes are `title=x a<p` over and over: every title is read.
    expect(text(`${'a<p title=x '.repeat(MB / 12)}>ssn ${SSN}`)).toBe(`a ${'x '.repeat(MB / 12)}ssn ${SSN}`);
  });

  it('a 2 MB ordinary message body is read whole', () => {
    const row = `<tr><td class="c">Patient <b>Name</b> &amp; ref&nbsp;42</td></tr>\n`;
    const html = `<table>${row.repeat((2 * MB) / row.length)}</table><p>ssn 123-<span>45</span>-6788</p>`;
    const out = text(html);
    expect(out.endsWith(`ssn ${SSN}`)).toBe(true);
    expect(out.startsWith('Patient Name & ref 42 Patient')).toBe(true);
  });
});
