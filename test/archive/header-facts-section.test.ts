import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { openArchive } from '../../src/archive/admin.js';
import { headerFacts, readHead } from '../../src/archive/header-facts.js';
import type { ItemMeta } from '../../src/archive/types.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail } from '../helpers/smtp-client.js';

/**
 * The archive indexes a message's Subject and Message-ID from its header fields only,
 * the header section ended where readers and the rest of Postern end it
 * (protect/header-end.ts). A message sent without the blank line after its headers has
 * body lines there; a "Subject:" line among them is body text: indexed as the subject it
 * put a patient's results into the archive's metadata, and the archive disagreed with
 * the gateway's own inspection (whose subject is the header's).
 */
const s = scenario();

const HEAD = ['From: dr.jones@client.test', 'To: smith@dest.test', 'Date: Mon, 23 Nov 2026 10:00:00 +0000'];
const BODY = ['Dear Dr Smith,', 'Subject: HIV test results for John Doe', 'Message-ID: <not-this@client.test>', 'Regards'];

describe('archive index facts of a message without the blank line after its headers', () => {
  it('no subject and no Message-ID come from its body lines', async () => {
    const mx = await s.mx();
    const gw = await s.gateway({ delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } });
    const sent = [
      { raw: [...HEAD, ...BODY], subject: '', messageId: undefined },
      { raw: [...HEAD, 'Subject: Referral', 'Message-ID: <ref-1@client.test>', ...BODY, '', 'PS'], subject: 'Referral', messageId: '<ref-1@client.test>' },
    ];
    const ids: string[] = [];
    for (const m of sent) {
      const r = await sendMail(gw.port, { from: 'dr.jones@client.test', to: ['smith@dest.test'], raw: `${m.raw.join('\r\n')}\r\n` });
      expect(r.ok).toBe(true);
      ids.push(r.queueId!);
    }
    await mx.waitFor(2);
    const { reader } = await openArchive(gw.config, gw.dataDir);
    const metas = new Map<string, ItemMeta>();
    for await (const e of reader.items()) metas.set(e.record.id, await reader.meta(e));
    for (const [i, m] of sent.entries()) {
      const meta = metas.get(ids[i]!);
      expect({ subject: meta?.subject, messageId: meta?.messageId }).toEqual({ subject: m.subject, messageId: m.messageId });
    }
  });
});

describe('headerFacts and readHead', () => {
  const message = Buffer.from(`${[...HEAD, 'Subject: Referral', ...BODY].join('\r\n')}\r\n`);

  it('a stream is read as far as its header section, wherever the chunks are cut, and the facts are the header fields', async () => {
    for (let at = 0; at <= message.length; at++) {
      const head = await readHead(Readable.from([message.subarray(0, at), message.subarray(at)], { objectMode: false }));
      expect(headerFacts(head), `cut at ${at}`).toEqual({ subject: 'Referral', messageId: undefined });
    }
  });

  it('reads no further than the chunk in which the header section ends', async () => {
    let pulled = 0;
    const chunks = [message, ...Array.from({ length: 20 }, () => Buffer.alloc(64 * 1024, 'a'))];
    const stream = new Readable({
      read() {
        this.push(chunks[pulled++] ?? null);
      },
    });
    expect((await readHead(stream)).equals(message)).toBe(true);
    expect(pulled).toBeLessThanOrEqual(2);
  });

  it('a folded subject, an encoded one, obsolete space before the colon', () => {
    expect(headerFacts(Buffer.from('Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=\r\n  aus Koeln\r\n\r\nSubject: body\r\n')).subject).toBe('Grüße aus Koeln');
    expect(headerFacts(Buffer.from('Message-ID : <a@b.test>\r\nDear Dr Smith,\r\n')).messageId).toBe('<a@b.test>');
  });
});
