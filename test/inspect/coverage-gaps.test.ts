import { describe, expect, it } from 'vitest';
import { detectorsConfigSchema } from '../../src/inspect/detectors/index.js';
import { inspectMessage } from '../../src/inspect/inspector.js';
import { DEFAULT_INSPECT_LIMITS, parseMessage } from '../../src/inspect/parse.js';

const SSN = '524-12-3456';
const detectors = detectorsConfigSchema.parse({});
const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'latin1');
const mixed = (...parts: string[]) =>
  crlf(`From: dr@client.test\nSubject: see attached\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="BB"\n\n${parts.map((p) => `--BB\n${p}\n`).join('')}--BB--\n`);
const inspect = async (raw: Buffer) => {
  const f = await inspectMessage(raw, raw.length, detectors);
  return { error: f.error, hits: f.detectors.hits.map((h) => h.detector) };
};

describe('forwarded (embedded) messages are inspected', () => {
  const inner = `From: lab@lab.test\nSubject: results for SSN ${SSN}\nContent-Type: text/plain\n\nNothing here.\n`;
  const innerBody = `From: lab@lab.test\nSubject: results\nContent-Type: text/plain\n\nPatient SSN ${SSN}\n`;
  const cases: Record<string, Buffer> = {
    'as an attachment (forward as attachment)': mixed('Content-Type: text/plain\n\nfwd', `Content-Type: message/rfc822; name="fwd.eml"\nContent-Disposition: attachment; filename="fwd.eml"\n\n${innerBody}`),
    'without Content-Disposition': mixed('Content-Type: text/plain\n\nfwd', `Content-Type: message/rfc822\n\n${innerBody}`),
    'message/global': mixed('Content-Type: text/plain\n\nfwd', `Content-Type: message/global\n\n${innerBody}`),
    'base64-encoded': mixed('Content-Type: text/plain\n\nfwd', `Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n${Buffer.from(innerBody.replace(/\n/g, '\r\n')).toString('base64')}`),
    'as the root type': crlf(`From: dr@client.test\nSubject: fwd\nContent-Type: message/rfc822\n\n${innerBody}`),
    'PHI only in its Subject': mixed('Content-Type: text/plain\n\nfwd', `Content-Type: message/rfc822\nContent-Disposition: attachment\n\n${inner}`),
    'an .eml declared as octet-stream': mixed('Content-Type: text/plain\n\nfwd', `Content-Type: application/octet-stream; name="fwd.eml"\nContent-Disposition: attachment\nContent-Transfer-Encoding: base64\n\n${Buffer.from(innerBody).toString('base64')}`),
  };
  for (const [name, raw] of Object.entries(cases)) {
    it(name, async () => expect(await inspect(raw)).toEqual({ error: undefined, hits: ['ssn'] }));
  }

  it('still lists the forwarded message as an attachment, with its size, and its own attachments', async () => {
    const withPdf = `From: lab@lab.test\nSubject: r\nContent-Type: multipart/mixed; boundary="in"\n\n--in\nContent-Type: text/plain\n\nhi\n--in\nContent-Type: application/pdf; name="scan.pdf"\nContent-Transfer-Encoding: base64\n\n${Buffer.alloc(300, 1).toString('base64')}\n--in--\n`;
    const r = await parseMessage(mixed('Content-Type: text/plain\n\nfwd', `Content-Type: message/rfc822; name="fwd.eml"\nContent-Disposition: attachment; filename="fwd.eml"\n\n${withPdf}`));
    expect(r.error).toBeUndefined();
    expect(r.attachments[0]).toMatchObject({ filename: 'fwd.eml', contentType: 'message/rfc822' });
    expect(r.attachments[0]!.size).toBeGreaterThan(400);
    expect(r.attachments[1]).toEqual({ filename: 'scan.pdf', contentType: 'application/pdf', size: 300 });
    expect(r.subject).toBe('see attached'); // the outer message's, not the forward's
  });

  it('counts embedded parts and depth against the limits of the whole message', async () => {
    let nested = `Subject: bottom\nContent-Type: text/plain\n\nSSN ${SSN}\n`;
    for (let i = 0; i < 25; i++) nested = `Subject: level ${i}\nContent-Type: message/rfc822\n\n${nested}`;
    expect((await parseMessage(crlf(nested))).error).toMatch(/nested deeper than 20 levels/);
  });
});

describe('text beyond the scan budget makes the inspection incomplete', () => {
  const filler = 'lorem ipsum dolor sit amet\n'.repeat(Math.ceil((2.2 * 1024 * 1024) / 27));
  const big = crlf(`From: dr@client.test\nSubject: big\nContent-Type: text/plain\n\n${filler}SSN ${SSN}\n`);

  it('is marked unscanned, naming the limit, never "nothing found" (the policy then raises protection)', async () => {
    const r = await inspectMessage(big, big.length, detectors);
    expect(r.error).toBeUndefined();
    expect(r.unscanned).toMatch(/exceeds .*2097152.*detectors\.maxScanBytes|detectors\.maxScanBytes.*2097152/);
  });

  it('raising detectors.maxScanBytes raises the parse budget too', async () => {
    const f = await inspectMessage(big, big.length, detectorsConfigSchema.parse({ maxScanBytes: 16 * 1024 * 1024 }));
    expect([f.error, f.detectors.hits.map((h) => h.detector)]).toEqual([undefined, ['ssn']]);
  });

  it('a parse limit below the text marks it unscanned as well', async () => {
    const r = await parseMessage(big, { ...DEFAULT_INSPECT_LIMITS, maxTextBytes: 1000 });
    expect(r.unscanned).toMatch(/inspection limit of 1000 bytes/);
  });
});

describe('header rules see every header field', () => {
  it('keeps fields after the 200th and values longer than 2048 characters', async () => {
    const fill = Array.from({ length: 250 }, (_, i) => `Received: from h${i} by x; Mon, 1 Jan 2024 00:00:00 +0000`).join('\n');
    const r = await parseMessage(crlf(`${fill}\nSubject: x\nX-Classification: confidential\nX-Long: ${'a'.repeat(3000)} restricted\n\nhi\n`));
    expect(r.headers['x-classification']).toEqual(['confidential']);
    expect(r.headers['x-long']?.[0]).toMatch(/ restricted$/);
    expect(r.headers.received).toHaveLength(250);
  });
});

describe('text attachments are recognised by their file name too', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const cases: Record<string, Buffer> = {
    'CSV declared as Excel': mixed('Content-Type: text/plain\n\nlist', `Content-Type: application/vnd.ms-excel; name="patients.csv"\nContent-Disposition: attachment; filename="patients.csv"\nContent-Transfer-Encoding: base64\n\n${b64(`name,ssn\nBob,${SSN}\n`)}`),
    '.txt as octet-stream': mixed('Content-Type: text/plain\n\nlist', `Content-Type: application/octet-stream; name=p.txt\nContent-Transfer-Encoding: base64\n\n${b64(`ssn ${SSN}\n`)}`),
    'inline application/json': mixed('Content-Type: text/plain\n\nlist', `Content-Type: application/json\n\n{"ssn":"${SSN}"}`),
    '.tsv as octet-stream': mixed('Content-Type: text/plain\n\nlist', `Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="x.tsv"\n\nname\tssn\nBob\t${SSN}`),
  };
  for (const [name, raw] of Object.entries(cases)) {
    it(name, async () => expect(await inspect(raw)).toEqual({ error: undefined, hits: ['ssn'] }));
  }

  it('an HTML attachment is read as its text, as an HTML body is', async () => {
    for (const ct of ['text/html; name=a.html', 'application/octet-stream; name=a.htm']) {
      const r = await parseMessage(mixed('Content-Type: text/plain\n\nhi', `Content-Type: ${ct}\nContent-Disposition: attachment\n\n<p>SSN <!-- x -->${SSN} <b>bold</b></p>`));
      expect(r.texts.find((t) => t.source === 'attachment')?.text).toBe(`SSN ${SSN} bold`);
    }
  });
});

describe('charsets TextDecoder gets wrong', () => {
  const ssn = `ssn ${SSN}`;
  const be = Buffer.from(ssn, 'utf16le').swap16();
  const utf32be = Buffer.concat([...ssn].map((c) => Buffer.from([0, 0, 0, c.charCodeAt(0)])));
  const cases: Record<string, [string, Buffer]> = {
    'UTF-16 big-endian with a BOM': ['utf-16', Buffer.concat([Buffer.from([0xfe, 0xff]), be])],
    'UTF-16 without a BOM (RFC 2781: big-endian)': ['utf-16', be],
    'UTF-16BE': ['utf-16be', be],
    'UTF-7': ['utf-7', Buffer.from('ssn 524+AC0-12+AC0-3456')],
    'UTF-32 (big-endian, no BOM)': ['utf-32', utf32be],
  };
  for (const [name, [charset, bytes]] of Object.entries(cases)) {
    it(name, async () => {
      const r = await parseMessage(crlf(`Subject: x\nContent-Type: text/plain; charset=${charset}\nContent-Transfer-Encoding: base64\n\n${bytes.toString('base64')}\n`));
      expect(r.texts.find((t) => t.source === 'text')?.text).toBe(ssn);
    });
  }
});
