import { describe, expect, it } from 'vitest';
import { LOOP_HEADER, rfc5322Date, traceHeaders, type TraceInput } from '../../src/ingress/trace-headers.js';

const DATE = new Date(Date.UTC(2024, 0, 5, 7, 8, 9)); // Fri, 5 Jan 2024 07:08:09 UTC

function input(over: Partial<TraceInput> = {}, client: Partial<TraceInput['client']> = {}): TraceInput {
  return {
    hostname: 'gw.example.org',
    queueId: '01HQ0ABCDEFGHJKMNP',
    client: { ip: '192.0.2.10', helo: 'mail.client.example', sessionId: 's1', ...client },
    clientHostname: 'mail.client.example',
    protocol: 'ESMTPS',
    rcptTo: ['bob@example.net'],
    date: DATE,
    ...over,
  };
}

const text = (i: TraceInput) => traceHeaders(i).toString('utf8');

/** Splits the header block into unfolded fields; checks every line ends in CRLF. */
function fields(block: string): [string, string][] {
  expect(block.endsWith('\r\n')).toBe(true);
  expect(block.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  const out: [string, string][] = [];
  for (const line of block.slice(0, -2).split(/\r\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    out.push([line.slice(0, colon), line.slice(colon + 1).replace(/\r\n[ \t]/g, ' ').trim()]);
  }
  return out;
}

describe('traceHeaders', () => {
  it('exact bytes for a TLS session with one recipient', () => {
    expect(text(input({}, { tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' } }))).toBe(
      'Received: from mail.client.example (mail.client.example [192.0.2.10])\r\n' +
        '\tby gw.example.org (Postern) with ESMTPS id 01HQ0ABCDEFGHJKMNP\r\n' +
        '\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n' +
        '\tfor <bob@example.net>;\r\n' +
        '\tFri, 5 Jan 2024 07:08:09 +0000\r\n' +
        'X-Postern-Loop: gw.example.org\r\n',
    );
  });

  it('is two header fields: Received first, then the loop stamp', () => {
    const f = fields(text(input()));
    expect(f.map(([n]) => n)).toEqual(['Received', LOOP_HEADER]);
    expect(LOOP_HEADER).toBe('X-Postern-Loop');
    expect(f[1]).toEqual(['X-Postern-Loop', 'gw.example.org']);
  });

  it('Received follows RFC 5321 §4.4: from, by, with, id, for, then ";" date-time', () => {
    const [, value] = fields(text(input({ protocol: 'ESMTP' })))[0] as [string, string];
    expect(value).toMatch(
      /^from \S+ \(\S+ \[[0-9.]+\]\) by \S+ \(Postern\) with ESMTP id [0-9A-Z]+ for <[^>\s]+>; (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}$/,
    );
    // Exactly one ";" separating the clauses from the date.
    expect(value.split(';')).toHaveLength(2);
  });

  it('every line stays short (under the 78 character recommendation)', () => {
    for (const line of text(input({}, { tls: { protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256' } })).split('\r\n')) {
      expect(line.length).toBeLessThanOrEqual(78);
    }
  });

  it('names the recipient only when there is exactly one', () => {
    expect(text(input({ rcptTo: ['bob@example.net'] }))).toContain('\tfor <bob@example.net>;');
    const many = text(input({ rcptTo: ['bob@example.net', 'carol@example.net'] }));
    expect(many).not.toContain('for <');
    expect(many).not.toContain('bob@example.net');
    expect(many).not.toContain('carol@example.net');
    expect(many).toContain('id 01HQ0ABCDEFGHJKMNP;\r\n\t');
    expect(text(input({ rcptTo: [] }))).not.toContain('for <');
  });

  it('plaintext sessions have no TLS comment', () => {
    const t = text(input({ protocol: 'ESMTP' }));
    expect(t).not.toContain('using');
    expect(t).toContain('with ESMTP id');
  });

  it('the protocol is passed through (RFC 3848)', () => {
    for (const p of ['ESMTP', 'ESMTPS', 'ESMTPA', 'ESMTPSA', 'SMTP']) expect(text(input({ protocol: p }))).toContain(` with ${p} id `);
  });

  it('without a reverse name ("[ip]" from smtp-server, or empty) the host is "unknown"', () => {
    expect(text(input({ clientHostname: '[192.0.2.10]' }))).toMatch(/^Received: from mail\.client\.example \(unknown \[192\.0\.2\.10\]\)\r\n/);
    expect(text(input({ clientHostname: '' }))).toMatch(/^Received: from mail\.client\.example \(unknown \[192\.0\.2\.10\]\)\r\n/);
  });

  it('a client that never said HELO is "unknown"', () => {
    expect(text(input({}, { helo: '' }))).toMatch(/^Received: from unknown \(/);
  });

  it('hostile HELO names with CR/LF/spaces cannot inject headers or break the line', () => {
    const evil = 'evil.example\r\nX-Injected: yes\r\n\r\nbody';
    const t = text(input({}, { helo: evil }));
    const f = fields(t);
    expect(f.map(([n]) => n)).toEqual(['Received', 'X-Postern-Loop']);
    expect(t).not.toMatch(/\r\nX-Injected/);
    expect(t).toMatch(/^Received: from evil\.example%0D%0AX-Injected%3A%20yes%0D%0A%0D%0Abody \(/);
  });

  it('hostile HELO with spaces, tabs, NUL and DEL is percent-encoded into one token', () => {
    const t = text(input({}, { helo: ' a b\tc\x00d\x7fe\x1bf ' }));
    expect(t).toMatch(/^Received: from %20a%20b%09c%00d%7Fe%1Bf%20 \(/);
  });

  it('a HELO name that is no domain cannot open or close a comment, end the field, or escape: each such character is %XX', () => {
    for (const [helo, written] of [['evil(', 'evil%28'], ['a)by(trusted.example', 'a%29by%28trusted.example'], ['x;Mon, 1 Jan 2001', 'x%3BMon%2C%201%20Jan%202001'], ['a\\b"c', 'a%5Cb%22c'], ['100%', '100%25']]) {
      expect(text(input({}, { helo }))).toMatch(new RegExp(`^Received: from ${written} \\(mail\\.client\\.example \\[192\\.0\\.2\\.10\\]\\)\r\n`));
    }
  });

  it('address literals and domain names are written as they came', () => {
    for (const helo of ['[192.0.2.10]', '[IPv6:2001:db8::25]', 'Mail.Client.Example', 'localhost', 'mail.client.example.']) {
      expect(text(input({}, { helo }))).toMatch(new RegExp(`^Received: from ${helo.replace(/[.[\]]/g, '\\$&')} \\(`));
    }
  });

  it('hostile reverse names, TLS strings and recipients are neutralised too', () => {
    const t = text(
      input(
        { clientHostname: 'ptr.example\r\nX-A: 1', rcptTo: ['x@y\r\nX-B: 2'] },
        { tls: { protocol: 'TLSv1.3\r\nX-C: 3', cipher: 'C\nX-D: 4' } },
      ),
    );
    const f = fields(t);
    expect(f.map(([n]) => n)).toEqual(['Received', 'X-Postern-Loop']);
    expect(t).toContain('(ptr.example%0D%0AX-A%3A%201 [192.0.2.10])');
    expect(t).toContain('(using TLSv1.3X-C:3 with cipher CX-D:4)');
    expect(t).toContain('for <x@yX-B:2>;');
  });

  it('an overlong HELO is cut to 255 characters', () => {
    const t = text(input({}, { helo: 'a'.repeat(1000) }));
    expect(t).toContain(`from ${'a'.repeat(255)} (`);
    expect(t).not.toContain('a'.repeat(256));
  });

  it('internationalised domain names (HELO, recipient) are written as A-labels: our stamp alone never makes a message need SMTPUTF8', () => {
    const buf = traceHeaders(input({ rcptTo: ['nurse@bücher.example'] }, { helo: 'mail.bücher.example' }));
    expect(buf.toString('utf8')).toContain('from mail.xn--bcher-kva.example (');
    expect(buf.toString('utf8')).toContain('for <nurse@xn--bcher-kva.example>;');
    expect(buf.every((b) => b < 0x80)).toBe(true);
  });

  it('an address with a non-ASCII local part is written as it came (it needs SMTPUTF8 anyway)', () => {
    const buf = traceHeaders(input({ rcptTo: ['jörg@bücher.example'] }));
    expect(buf.toString('utf8')).toContain('for <jörg@bücher.example>;');
  });

  it('a non-ASCII HELO that is no domain name is percent-encoded: our stamp stays ASCII', () => {
    const buf = traceHeaders(input({}, { helo: 'ü ü' }));
    expect(buf.toString('utf8')).toContain('from %C3%BC%20%C3%BC (');
    expect(buf.every((b) => b < 0x80)).toBe(true);
  });

  it('an IPv6 client is written as an RFC 5321 IPv6 address literal', () => {
    // RFC 5321 §4.4 TCP-info is an address-literal, and §4.1.3 spells IPv6 ones "[IPv6:...]".
    const t = text(input({}, { ip: '2001:db8::25' }));
    expect(t).toContain('[IPv6:2001:db8::25])');
  });

  it('the date is the message arrival time in RFC 5322 form', () => {
    expect(text(input({ date: new Date(Date.UTC(1999, 11, 31, 23, 59, 59)) }))).toContain(';\r\n\tFri, 31 Dec 1999 23:59:59 +0000\r\n');
  });
});

describe('rfc5322Date', () => {
  it.each([
    [Date.UTC(2024, 0, 5, 7, 8, 9), 'Fri, 5 Jan 2024 07:08:09 +0000'],
    [Date.UTC(2024, 1, 29, 0, 0, 0), 'Thu, 29 Feb 2024 00:00:00 +0000'],
    [Date.UTC(2023, 11, 31, 23, 59, 59), 'Sun, 31 Dec 2023 23:59:59 +0000'],
    [0, 'Thu, 1 Jan 1970 00:00:00 +0000'],
    [Date.UTC(2025, 5, 16, 12, 30, 5), 'Mon, 16 Jun 2025 12:30:05 +0000'],
  ])('%d → %s', (ms, expected) => {
    expect(rfc5322Date(new Date(ms))).toBe(expected);
  });

  it('uses UTC whatever the local time zone, and round-trips through Date.parse', () => {
    for (let i = 0; i < 200; i++) {
      const ms = Math.floor(Date.UTC(1990, 0, 1) + i * 86_400_000 * 97.3 + i * 7_777_777);
      const d = new Date(Math.floor(ms / 1000) * 1000);
      const s = rfc5322Date(d);
      expect(s).toMatch(/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([1-9]|[12]\d|3[01]) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} ([01]\d|2[0-3]):[0-5]\d:[0-5]\d \+0000$/);
      expect(Date.parse(s)).toBe(d.getTime());
    }
  });
});
