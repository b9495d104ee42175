import { Readable } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/events/logger.js';
import { VariantBuilder, type Variant } from '../../src/deliver/variant.js';
import type { QueueBackend } from '../../src/queue/backend.js';
import { DkimSigner } from '../../src/sign/dkim.js';
import type { Envelope } from '../../src/types.js';
import { dkimConfig, makeDkimKey } from '../helpers/dkim.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail } from '../helpers/smtp-client.js';

/**
 * MAIL FROM's SIZE (RFC 1870) is the number of bytes sent after DATA. A variant is not
 * always the message as stored: the signer puts in the blank line a message without one
 * lacks (sign/signable.ts: 2 bytes, or 4 for a header-only message whose last line has no
 * line break), and removing the [secure] tag may make the Subject longer (a B-encoded
 * subject comes back Q-encoded). SIZE was the stored size plus the DKIM-Signature, so it
 * fell short of what was sent.
 */
const s = scenario();

/** A next hop that records each message's SIZE parameter and the bytes that came. */
class SizeRecordingMx {
  seen: { size: number | undefined; raw: Buffer }[] = [];
  port = 0;
  private server: SMTPServer | undefined;
  private pendingSize: number | undefined;

  async start(): Promise<this> {
    const server = new SMTPServer({
      name: 'mx.test',
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      hideSTARTTLS: true,
      // Announced, so the client declares SIZE.
      size: 100 * 1024 * 1024,
      disableReverseLookup: true,
      logger: false,
      closeTimeout: 200,
      onMailFrom: (address, _session, cb) => {
        const size = ((address as { args?: Record<string, string> | false }).args || {}).SIZE;
        this.pendingSize = size === undefined ? undefined : Number(size);
        cb();
      },
      onData: (stream, _session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          this.seen.push({ size: this.pendingSize, raw: Buffer.concat(chunks) });
          cb(null, 'Ok: stored');
        });
      },
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    server.on('error', () => undefined);
    const addr = server.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return this;
  }

  async waitFor(count: number): Promise<void> {
    for (let i = 0; i < 800 && this.seen.length < count; i++) await new Promise((r) => setTimeout(r, 25));
    if (this.seen.length < count) throw new Error(`next hop got ${this.seen.length} of ${count} messages`);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const nextHops: SizeRecordingMx[] = [];
afterEach(async () => {
  for (const mx of nextHops.splice(0)) await mx.stop();
});

const key = makeDkimKey('client.test', 'sel1');
const HEAD = ['From: dr.jones@client.test', 'To: smith@dest.test', 'Date: Mon, 23 Nov 2026 10:00:00 +0000'];
/** "[secure] " and a Japanese subject, B-encoded as mail clients send it. */
const TAGGED = `Subject: =?UTF-8?B?${Buffer.from('[secure] 検査結果のお知らせと次回の予約について').toString('base64')}?=`;
const lines = (...l: string[]) => `${l.join('\r\n')}\r\n`;

const MESSAGES: Record<string, string> = {
  'with the blank line': lines(...HEAD, 'Subject: control', '', 'Dear Dr Smith,'),
  'body lines in the header section': lines(...HEAD, 'Subject: no blank line', 'Dear Dr Smith,', 'Results attached.'),
  'header fields only': lines(...HEAD, 'Subject: header only'),
  'a B-encoded subject that loses its [secure] tag': lines(...HEAD, TAGGED, '', 'Dear Dr Smith,'),
  'a tagged subject, body lines in the header section': lines(...HEAD, TAGGED, 'Dear Dr Smith,'),
};

describe('SIZE in MAIL FROM is the size of the message sent', () => {
  for (const dkim of [false, true]) {
    it(`${dkim ? 'DKIM-signed' : 'not signed'}: ${Object.keys(MESSAGES).join('; ')}`, async () => {
      const dest = await new SizeRecordingMx().start();
      nextHops.push(dest);
      const gw = await s.gateway({ delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${dest.port}`, tls: 'none' } } }, ...(dkim ? { dkim: dkimConfig([key]) } : {}) });
      const names = Object.keys(MESSAGES);
      for (const name of names) {
        expect((await sendMail(gw.port, { from: 'dr.jones@client.test', to: ['smith@dest.test'], raw: MESSAGES[name]! })).ok).toBe(true);
        await dest.waitFor(names.indexOf(name) + 1); // one at a time: each arrival is the message just sent
      }
      const got = dest.seen.map((m, i) => ({ name: names[i], size: m.size, sent: m.raw.length }));
      expect(got).toEqual(got.map((g) => ({ ...g, size: g.sent })));
      if (dkim) expect(dest.seen.every((m) => m.raw.toString('latin1').startsWith('DKIM-Signature:'))).toBe(true);
      expect(dest.seen[3]!.raw.toString('latin1')).not.toContain(TAGGED); // the tag was removed
    });
  }
});

describe('VariantBuilder: the size it declares is the length of what open() yields, stored in memory or read as a stream', () => {
  const envelopeOf = (raw: Buffer): Envelope => ({ id: 'Q1', receivedAt: 0, mailFrom: 'dr.jones@client.test', rcptTo: ['smith@dest.test'], client: { ip: '127.0.0.1', helo: 'client.test', sessionId: 's1' }, size: raw.length }) as unknown as Envelope;
  const variant = { method: 'tls', domain: 'dest.test', rcpts: ['smith@dest.test'], minTls: 'none', requireMtaSts: false, stripSubjectTag: true } as unknown as Variant;
  const queueOf = (raw: Buffer, inMemory: boolean) =>
    ({
      bodyInMemory: () => (inMemory ? raw : undefined),
      openBody: async () => Readable.from([raw.subarray(0, 7), raw.subarray(7, 100), raw.subarray(100)], { objectMode: false }),
    }) as unknown as QueueBackend;
  const bytesOf = async (body: Buffer | Readable) => {
    if (Buffer.isBuffer(body)) return body.length;
    let n = 0;
    for await (const c of body) n += (c as Buffer).length;
    return n;
  };
  const log = createLogger('silent');

  // A message of our own may end without a line break (SMTP always ends it with one): 4 bytes put in.
  const UNENDED = { 'header fields only, the last line unended': `${HEAD.join('\r\n')}\r\nSubject: no line break` };
  for (const [name, text] of Object.entries({ ...MESSAGES, ...UNENDED })) {
    it(name, async () => {
      const raw = Buffer.from(text, 'latin1');
      for (const inMemory of [true, false]) {
        for (const signer of [undefined, new DkimSigner([{ ...key }], log)]) {
          const builder = new VariantBuilder(queueOf(raw, inMemory), () => '[secure]', log, undefined, signer);
          const out = await builder.build(envelopeOf(raw), variant, async () => raw);
          expect(out.size, `${inMemory ? 'in memory' : 'stream'}, ${signer ? 'signed' : 'not signed'}`).toBe(await bytesOf(await out.open()));
        }
      }
    });
  }
});
