import { Readable } from 'node:stream';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { buildDsn, readHeaderBlock, type FailedRecipient } from '../../src/deliver/dsn.js';
import type { Envelope } from '../../src/types.js';

const ORIGINAL: Envelope = {
  id: '01HQ0ABCDEFGHJKMNP',
  receivedAt: Date.UTC(2024, 0, 1, 9, 30, 0),
  mailFrom: 'alice@example.org',
  rcptTo: ['bob@example.net', 'carol@example.com', 'dave@delivered.example'],
  client: { ip: '192.0.2.10', helo: 'client.example.org', sessionId: 's1' },
  bodyType: '7bit',
  smtpUtf8: false,
  size: 1234,
};

const FAILED: FailedRecipient[] = [
  {
    rcpt: 'bob@example.net',
    status: '5.1.1',
    diagnostic: '550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown',
    diagnosticType: 'smtp',
    remoteMta: 'mx1.example.net',
    lastAttemptAt: Date.UTC(2024, 0, 1, 9, 31, 0),
  },
  {
    rcpt: 'carol@example.com',
    status: '4.4.7',
    diagnostic: 'delivery time expired: connection timed out',
    diagnosticType: 'x-postern',
    lastAttemptAt: Date.UTC(2024, 0, 6, 9, 30, 0),
  },
];

const ORIGINAL_HEADERS = Buffer.from(
  'Received: from client.example.org\r\n\tby gw.example.org; Mon, 1 Jan 2024 09:30:00 +0000\r\nFrom: Alice <alice@example.org>\r\nTo: team@example.org\r\nSubject: Quarterly report\r\nMessage-ID: <orig-123@example.org>\r\n',
);
const NOW = new Date(Date.UTC(2024, 0, 6, 9, 30, 5));

function build(over: Partial<Parameters<typeof buildDsn>[0]> = {}): Buffer {
  return buildDsn({ hostname: 'gw.example.org', original: ORIGINAL, failed: FAILED, originalHeaders: ORIGINAL_HEADERS, now: NOW, ...over });
}

/** Minimal structural MIME split of a multipart body: [headers, body] per part. */
function parts(raw: string, boundary: string): { headers: string; body: string }[] {
  const delimiter = `\r\n--${boundary}`;
  const start = raw.indexOf(`--${boundary}\r\n`);
  expect(start).toBeGreaterThan(0);
  const close = raw.indexOf(`${delimiter}--\r\n`);
  expect(close).toBeGreaterThan(start);
  expect(raw.slice(close + delimiter.length + 4)).toBe('');
  const inner = raw.slice(start + boundary.length + 4, close);
  return inner.split(`${delimiter}\r\n`).map((p) => {
    const blank = p.indexOf('\r\n\r\n');
    return { headers: p.slice(0, blank), body: p.slice(blank + 4) };
  });
}

/** Header fields of a header block, unfolded, names lower-cased. */
function headerMap(block: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of block.split(/\r\n(?![ \t])/)) {
    if (!line) continue;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    map.set(name, [...(map.get(name) ?? []), line.slice(colon + 1).replace(/\r\n[ \t]+/g, ' ').trim()]);
  }
  return map;
}

describe('buildDsn parsed with mailparser', () => {
  it('is a multipart/report; report-type=delivery-status', async () => {
    const mail = await simpleParser(build());
    const ct = mail.headers.get('content-type') as { value: string; params: Record<string, string> };
    expect(ct.value).toBe('multipart/report');
    expect(ct.params['report-type']).toBe('delivery-status');
    expect(ct.params.boundary).toMatch(/^postern-dsn-[0-9a-f]{24}$/);
  });

  it('comes from MAILER-DAEMON, goes to the original sender, is auto-replied', async () => {
    const mail = await simpleParser(build());
    expect(mail.from?.value).toEqual([{ address: 'MAILER-DAEMON@gw.example.org', name: 'Mail Delivery System' }]);
    const to = Array.isArray(mail.to) ? mail.to[0] : mail.to;
    expect(to?.value.map((a) => a.address)).toEqual(['alice@example.org']);
    expect(mail.subject).toBe('Undelivered Mail Returned to Sender');
    expect(mail.headers.get('auto-submitted')).toBe('auto-replied');
    expect(mail.headers.get('x-postern-loop')).toBe('gw.example.org');
    expect(mail.headers.get('mime-version')).toBe('1.0');
    expect(mail.date?.getTime()).toBe(NOW.getTime());
    expect(mail.messageId).toBe(`<${ORIGINAL.id}.${NOW.getTime()}.dsn@gw.example.org>`);
  });

  it('the human-readable part names each failed recipient with its reason', async () => {
    const mail = await simpleParser(build());
    expect(mail.text).toContain('This is the mail system at host gw.example.org.');
    // Long reasons are wrapped (continuation lines indented); unwrapped they read the same.
    expect(mail.text?.replace(/\r?\n {4}/g, ' ')).toContain('<bob@example.net>: 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown');
    expect(mail.text).toContain('<carol@example.com>: delivery time expired: connection timed out');
  });

  it('the original headers are attached as text/rfc822-headers', async () => {
    const mail = await simpleParser(build());
    const att = mail.attachments.find((a) => a.contentType === 'text/rfc822-headers');
    expect(att).toBeDefined();
    const text = att?.content.toString('utf8') ?? '';
    expect(text).toContain('Subject: Quarterly report\r\n');
    expect(text).toContain('Message-ID: <orig-123@example.org>\r\n');
    expect(text).toContain('Received: from client.example.org\r\n\tby gw.example.org;');
  });
});

describe('buildDsn structure (RFC 3464)', () => {
  const raw = build().toString('utf8');
  const top = raw.slice(0, raw.indexOf('\r\n\r\n'));
  const boundary = /boundary="([^"]+)"/.exec(top)?.[1] as string;
  const p = parts(raw, boundary);

  it('exactly three parts: text/plain, message/delivery-status, text/rfc822-headers', () => {
    expect(p).toHaveLength(3);
    expect(headerMap(p[0]!.headers).get('content-type')).toEqual(['text/plain; charset=utf-8']);
    expect(headerMap(p[1]!.headers).get('content-type')).toEqual(['message/delivery-status']);
    expect(headerMap(p[2]!.headers).get('content-type')).toEqual(['text/rfc822-headers']);
  });

  it('the top-level header block has the expected fields once each', () => {
    const h = headerMap(top);
    for (const name of ['from', 'to', 'subject', 'date', 'message-id', 'auto-submitted', 'mime-version', 'content-type']) {
      expect(h.get(name), name).toHaveLength(1);
    }
    expect(h.get('to')).toEqual(['<alice@example.org>']);
    expect(h.get('date')).toEqual(['Sat, 6 Jan 2024 09:30:05 +0000']);
  });

  describe('message/delivery-status', () => {
    const groups = p[1]!.body.replace(/\r\n+$/, '').split('\r\n\r\n').map(headerMap);

    it('per-message fields, then one group per failed recipient only', () => {
      expect(groups).toHaveLength(3);
      const [perMessage] = groups;
      expect(perMessage!.get('reporting-mta')).toEqual(['dns; gw.example.org']);
      expect(perMessage!.get('arrival-date')).toEqual(['Mon, 1 Jan 2024 09:30:00 +0000']);
      expect(perMessage!.get('x-postern-queue-id')).toEqual([ORIGINAL.id]);
    });

    it('first recipient: remote SMTP failure', () => {
      const g = groups[1]!;
      expect(g.get('final-recipient')).toEqual(['rfc822; bob@example.net']);
      expect(g.get('action')).toEqual(['failed']);
      expect(g.get('status')).toEqual(['5.1.1']);
      expect(g.get('remote-mta')).toEqual(['dns; mx1.example.net']);
      expect(g.get('diagnostic-code')).toEqual(['smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown']);
      expect(g.get('last-attempt-date')).toEqual(['Mon, 1 Jan 2024 09:31:00 +0000']);
    });

    it('second recipient: local reason, no Remote-MTA', () => {
      const g = groups[2]!;
      expect(g.get('final-recipient')).toEqual(['rfc822; carol@example.com']);
      expect(g.get('action')).toEqual(['failed']);
      expect(g.get('status')).toEqual(['4.4.7']);
      expect(g.has('remote-mta')).toBe(false);
      expect(g.get('diagnostic-code')).toEqual(['x-postern; delivery time expired: connection timed out']);
    });
  });

  it('only failed recipients are named anywhere', () => {
    expect(raw).toContain('bob@example.net');
    expect(raw).toContain('carol@example.com');
    expect(raw).not.toContain('dave@delivered.example');
  });

  it('the third part holds the original header block unchanged', () => {
    expect(p[2]!.body).toBe(ORIGINAL_HEADERS.toString('utf8'));
  });

  it('uses CRLF line endings only', () => {
    expect(raw).not.toMatch(/(?<!\r)\n/);
    expect(raw).not.toMatch(/\r(?!\n)/);
  });
});

describe('buildDsn edge cases', () => {
  const longReply = [
    `550-5.7.1 ${'This message was rejected because it looks like bulk mail '.repeat(5)}`,
    `550-5.7.1 ${'Please see https://support.example/bulk for more information '.repeat(5)}`,
    `550-5.7.1 ${'and contact the postmaster of the receiving domain if needed '.repeat(5)}`,
    `550 5.7.1 ${'Reference: 0123456789abcdef 0123456789abcdef 0123456789abcdef '.repeat(5)}`,
  ].join('\n');
  const long: FailedRecipient = { rcpt: 'bob@example.net', status: '5.7.1', diagnostic: longReply, diagnosticType: 'smtp', remoteMta: 'mx.example.net', lastAttemptAt: 0 };

  it('a multi-line reply becomes one unfolded diagnostic; Diagnostic-Code is folded', () => {
    const raw = build({ failed: [long] }).toString('utf8');
    expect(raw).not.toMatch(/(?<!\r)\n/);
    const diag = /\r\nDiagnostic-Code: [^]*?\r\n(?![ \t])/.exec(raw)?.[0] ?? '';
    expect(diag.split('\r\n').length).toBeGreaterThan(3);
    for (const line of diag.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
    const unfolded = diag.replace(/\r\n[ \t]/g, ' ').trim();
    expect(unfolded).toBe(`Diagnostic-Code: smtp; ${longReply.replace(/\n/g, ' ').trim()}`);
  });

  it('no line of the report is longer than 998 characters, even with a long diagnostic', () => {
    const raw = build({ failed: [long] }).toString('utf8');
    expect(longReply.length).toBeGreaterThan(1000);
    const tooLong = raw.split('\r\n').filter((l) => Buffer.byteLength(l) > 998);
    expect(tooLong.map((l) => `${Buffer.byteLength(l)} bytes: ${l.slice(0, 40)}...`)).toEqual([]);
  });

  it('CR and LF in a diagnostic can never start a new field', () => {
    const raw = build({ failed: [{ ...FAILED[1]!, diagnostic: 'bad\r\nStatus: 2.0.0\r\nAction: delivered' }] }).toString('utf8');
    expect(raw).not.toMatch(/^Action: delivered/m);
    expect(raw).toContain('Diagnostic-Code: x-postern; bad Status: 2.0.0 Action: delivered');
  });

  it('empty original headers still give a well-formed third part', async () => {
    const raw = build({ originalHeaders: Buffer.alloc(0) }).toString('utf8');
    expect(raw).not.toMatch(/(?<!\r)\n/);
    const mail = await simpleParser(raw);
    expect(mail.attachments.some((a) => a.contentType === 'text/rfc822-headers')).toBe(true);
  });

  it('the boundary differs per report and does not occur in the content', () => {
    const a = build().toString();
    const b = build().toString();
    const ba = /boundary="([^"]+)"/.exec(a)?.[1];
    const bb = /boundary="([^"]+)"/.exec(b)?.[1];
    expect(ba).not.toBe(bb);
    expect(ORIGINAL_HEADERS.toString()).not.toContain(ba as string);
  });

  it('without "now" the Date is the current time', async () => {
    const before = Math.floor(Date.now() / 1000) * 1000;
    const mail = await simpleParser(buildDsn({ hostname: 'gw.example.org', original: ORIGINAL, failed: FAILED, originalHeaders: ORIGINAL_HEADERS }));
    expect(mail.date!.getTime()).toBeGreaterThanOrEqual(before);
    expect(mail.date!.getTime()).toBeLessThanOrEqual(Date.now());
  });
});

describe('readHeaderBlock', () => {
  const HEADER = 'From: a@example.org\r\nSubject: Hello\r\n\tfolded\r\nTo: b@example.net\r\n';
  const MESSAGE = `${HEADER}\r\nBody line 1\r\nFrom: not a header\r\n`;

  function chunked(text: string, size: number): Readable {
    const buf = Buffer.from(text);
    const chunks: Buffer[] = [];
    for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
    return Readable.from(chunks);
  }

  it('returns the header block without the blank line or body', async () => {
    const out = await readHeaderBlock(chunked(MESSAGE, 1000));
    expect(out.toString()).toBe(HEADER);
  });

  it.each([1, 2, 3, 5, 7, 13])('same result when read in %i-byte chunks', async (size) => {
    const out = await readHeaderBlock(chunked(MESSAGE, size));
    expect(out.toString()).toBe(HEADER);
  });

  it('the blank line split across chunks at every position', async () => {
    for (let at = 1; at < MESSAGE.length; at++) {
      const stream = Readable.from([Buffer.from(MESSAGE.slice(0, at)), Buffer.from(MESSAGE.slice(at))]);
      expect((await readHeaderBlock(stream)).toString(), `split at ${at}`).toBe(HEADER);
    }
  });

  it('a message without a body is all header', async () => {
    expect((await readHeaderBlock(chunked(HEADER, 4))).toString()).toBe(HEADER);
  });

  it('an empty message gives an empty block', async () => {
    expect((await readHeaderBlock(Readable.from([]))).length).toBe(0);
  });

  it('stops at the limit on a line boundary', async () => {
    const lines = Array.from({ length: 200 }, (_, i) => `X-Header-${String(i).padStart(3, '0')}: ${'v'.repeat(40)}\r\n`).join('');
    const out = (await readHeaderBlock(chunked(`${lines}\r\nbody`, 64), 1000)).toString();
    expect(out.length).toBeLessThanOrEqual(1002);
    expect(out.length).toBeGreaterThan(900);
    expect(out.endsWith('\r\n')).toBe(true);
    expect(lines.startsWith(out)).toBe(true);
  });

  it('a first line longer than the limit gives whole lines only (here: none)', async () => {
    const out = await readHeaderBlock(chunked(`X-Long: ${'x'.repeat(5000)}\r\n\r\nbody`, 100), 1000);
    expect(out.length === 0 || out.toString().endsWith('\r\n'), `got ${JSON.stringify(out.toString())}`).toBe(true);
  });

  it('destroys the body stream, without reading it to the end', async () => {
    let pulled = 0;
    const stream = new Readable({
      read() {
        pulled++;
        this.push(pulled === 1 ? Buffer.from('A: 1\r\n\r\n') : Buffer.from('body '.repeat(100)));
        if (pulled > 1000) this.push(null);
      },
    });
    const out = await readHeaderBlock(stream);
    expect(out.toString()).toBe('A: 1\r\n');
    expect(stream.destroyed).toBe(true);
    expect(pulled).toBeLessThan(10);
  });

  it('destroys the body stream when it ends normally too', async () => {
    const stream = chunked(HEADER, 8);
    await readHeaderBlock(stream);
    expect(stream.destroyed).toBe(true);
  });

  it('an error in the body stream is passed on', async () => {
    const stream = new Readable({
      read() {
        this.destroy(new Error('disk read failed'));
      },
    });
    await expect(readHeaderBlock(stream)).rejects.toThrow('disk read failed');
  });
});

describe('buildDsn for a message that is not ASCII', () => {
  const utf8Headers = Buffer.from('From: Jörg <joerg@example.org>\r\nTo: =?utf-8?q?x?= <x@example.net>\r\nSubject: Grüße aus Köln = Befund\r\n', 'utf8');
  const failed: FailedRecipient[] = [{ rcpt: 'jörg+akte@bücher.example', status: '5.1.1', diagnostic: '550 5.1.1 Empfänger unbekannt', diagnosticType: 'smtp', lastAttemptAt: NOW.getTime() }];
  const raw = build({ failed, originalHeaders: utf8Headers });

  it('is 7-bit all through: it needs no 8BITMIME at the sender\'s server', () => {
    expect(raw.every((b) => b < 0x80)).toBe(true);
  });

  it('the text part and the original headers are quoted-printable, and decode to what they were', async () => {
    const parsed = await simpleParser(raw);
    expect(parsed.text).toContain('<jörg+akte@bücher.example>: 550 5.1.1 Empfänger unbekannt');
    const headers = parsed.attachments.find((a) => a.contentType === 'text/rfc822-headers');
    expect(headers?.content.equals(utf8Headers)).toBe(true);
    const p = parts(raw.toString('latin1'), /boundary="([^"]+)"/.exec(raw.toString('latin1'))![1]!);
    expect(p[0]!.headers).toContain('Content-Transfer-Encoding: quoted-printable');
    expect(p[2]!.headers).toContain('Content-Transfer-Encoding: quoted-printable');
  });

  it('a non-ASCII recipient is the utf-8 address type in its 7-bit form (RFC 6533 §3); the diagnostic is ASCII', () => {
    const status = parts(raw.toString('latin1'), /boundary="([^"]+)"/.exec(raw.toString('latin1'))![1]!)[1]!.body;
    expect(status).toContain('Final-Recipient: utf-8; j\\x{F6}rg\\x{2B}akte@b\\x{FC}cher.example\r\n');
    expect(status).toContain('Diagnostic-Code: smtp; 550 5.1.1 Empf?nger unbekannt');
  });
});
