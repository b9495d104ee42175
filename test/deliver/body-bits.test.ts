import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { VariantBuilder, type Variant } from '../../src/deliver/variant.js';
import { createLogger } from '../../src/events/logger.js';
import type { QueueBackend } from '../../src/queue/backend.js';
import type { Envelope } from '../../src/types.js';
import { deepMerge, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { queueBackendCases } from '../helpers/queue-backends.js';
import { RawSmtp, testMessage } from '../helpers/smtp-client.js';

// Many clients (Microsoft 365 among them) declare BODY=8BITMIME for every message. The
// queue records whether the stored body really has a byte above 0x7F (Envelope.bodyBits),
// and a clear message that is 7-bit all through goes on without BODY=8BITMIME, to a next
// hop without 8BITMIME too, instead of bouncing with 5.6.3 "the message is 8-bit".

const stops: { stop(): Promise<void> }[] = [];
const backends = await queueBackendCases();
const LINES = ['delivery.sent', 'delivery.bounced', 'delivery.deferred'];
/** More than the fs spool keeps in its segment log (256 KB): the body gets a file of its own. */
const LARGE = ('x'.repeat(76) + '\r\n').repeat(4000);

describe.each(backends)('BODY=8BITMIME declared, next hop without 8BITMIME ($name queue)', (backend) => {
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s.stop().catch(() => undefined);
    await backend.cleanup();
  });

  async function setUp(): Promise<{ g: TestGateway; dest: TestMx }> {
    const dest = await new TestMx({ eightBitMime: false }).start();
    stops.push(dest);
    const g = await startTestGateway(deepMerge(backend.overrides(), { delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${dest.port}`, tls: 'none' } } } }));
    stops.push(g);
    expect(g.config.queue.backend).toBe(backend.name);
    return { g, dest };
  }

  /** Sends with MAIL FROM ... BODY=8BITMIME and returns the first delivery line for the recipient. */
  async function send8bitmime(g: TestGateway, raw: Buffer): Promise<Record<string, unknown>> {
    const c = await RawSmtp.connect(g.port);
    try {
      expect(await c.command('EHLO client.test')).toMatch(/^250-/);
      expect(await c.command('MAIL FROM:<s@client.test> BODY=8BITMIME')).toMatch(/^250 /);
      expect(await c.command('RCPT TO:<dr@dest.test>')).toMatch(/^250 /);
      expect(await c.command('DATA')).toMatch(/^354 /);
      c.write(raw);
      expect(await c.command('.')).toMatch(/^250 /);
    } finally {
      c.close();
    }
    const l = await g.waitForLog((x) => LINES.includes(String(x.event)) && x.to === 'dr@dest.test');
    return { event: l.event, dsn: l.dsn, response: l.response };
  }

  it.skipIf(!backend.available)('a body that is ASCII all through is delivered, without BODY=8BITMIME', async () => {
    const { g, dest } = await setUp();
    const raw = testMessage({ to: 'dr@dest.test' });
    expect(await send8bitmime(g, raw)).toMatchObject({ event: 'delivery.sent' });
    expect(dest.messages).toHaveLength(1);
  });

  it.skipIf(!backend.available)('so is a large one (the fs spool writes its envelope line before the body has all arrived)', async () => {
    const { g, dest } = await setUp();
    expect(await send8bitmime(g, testMessage({ to: 'dr@dest.test', body: LARGE }))).toMatchObject({ event: 'delivery.sent' });
    expect(dest.messages).toHaveLength(1);
  });

  it.skipIf(!backend.available)('a body with UTF-8 in it still bounces with 5.6.3 (Postern does not downgrade)', async () => {
    const { g, dest } = await setUp();
    expect(await send8bitmime(g, testMessage({ to: 'dr@dest.test', body: 'Grüße' }))).toMatchObject({ event: 'delivery.bounced', dsn: '5.6.3' });
    expect(dest.messages).toHaveLength(0);
  });

  it.skipIf(!backend.available)('so does a large one whose only 8-bit byte comes after the first 256 KB', async () => {
    const { g, dest } = await setUp();
    expect(await send8bitmime(g, testMessage({ to: 'dr@dest.test', body: `${LARGE}Grüße` }))).toMatchObject({ event: 'delivery.bounced', dsn: '5.6.3' });
    expect(dest.messages).toHaveLength(0);
  });
});

describe('the 8-bit decision of a clear variant', () => {
  const body = Buffer.from('Subject: x\r\n\r\nhello\r\n');
  const queue = { bodyInMemory: () => body, openBody: async () => Readable.from([body]) } as unknown as QueueBackend;
  const builder = new VariantBuilder(queue, () => '[secure]', createLogger('silent'));
  const variant = { method: 'tls', domain: 'dest.test', rcpts: ['dr@dest.test'], stripSubjectTag: false } as unknown as Variant;
  const envelope: Envelope = {
    id: 'Q1',
    receivedAt: 0,
    mailFrom: 's@client.test',
    rcptTo: ['dr@dest.test'],
    client: { ip: '127.0.0.1', helo: 'client.test', sessionId: 's1' },
    bodyType: '8bitmime',
    smtpUtf8: false,
    size: body.length,
  };
  const eightBit = async (e: Partial<Envelope>) => (await builder.build({ ...envelope, ...e }, variant, async () => body)).eightBit;

  it('a message spooled before bodyBits was recorded goes as its client declared it', async () => {
    expect(await eightBit({ bodyType: '8bitmime' })).toBe(true);
    expect(await eightBit({ bodyType: '7bit' })).toBe(false);
  });

  it('declared 8BITMIME: 8-bit only when the stored body is; declared 7-bit stays 7-bit', async () => {
    expect(await eightBit({ bodyType: '8bitmime', bodyBits: '7bit' })).toBe(false);
    expect(await eightBit({ bodyType: '8bitmime', bodyBits: '8bit' })).toBe(true);
    expect(await eightBit({ bodyType: '7bit', bodyBits: '8bit' })).toBe(false);
  });
});
