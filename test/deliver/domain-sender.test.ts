import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { DeliveryDns } from '../../src/deliver/dns.js';
import { DomainSender, type Outgoing } from '../../src/deliver/domain-sender.js';
import { ConnectionPool } from '../../src/deliver/pool.js';
import { Router } from '../../src/deliver/router.js';
import { createLogger } from '../../src/events/logger.js';
import { FsSpool } from '../../src/queue/fs/spool.js';
import { newQueueId } from '../../src/queue/ids.js';
import type { Envelope } from '../../src/types.js';
import { testConfigInput } from '../helpers/gateway.js';
import { TestDns } from '../helpers/dns-server.js';
import { startMxHosts, TestMx } from '../helpers/mx-server.js';

const MAX_PER_HOST = 2;

async function queueMessage(spool: FsSpool, rcptTo = ['pat@partner.test']): Promise<Envelope> {
  const writer = await spool.receive({ id: newQueueId(), receivedAt: Date.now(), mailFrom: 'dr@client.test', rcptTo, client: { ip: '127.0.0.1', helo: 'c', sessionId: 's' }, bodyType: '7bit', smtpUtf8: false });
  await writer.write(Buffer.from('Subject: x\r\n\r\nhello\r\n'));
  return writer.commit();
}

/** The variant as the worker hands it over: its body opened from the queue on each try. */
const outgoing = (spool: FsSpool, e: Envelope): Outgoing => ({ domain: 'partner.test', rcpts: e.rcptTo, minTls: 'none', requireMtaSts: false, open: () => spool.openBody(e.id), size: e.size, eightBit: false });

/** Rejects instead of waiting for ever, so a hung send fails the test with a reason. */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * A real spool, pool, router and receiving MX on 127.0.0.1. Opening a body fails when the
 * queue cannot give it (here: the message was removed meanwhile; with Redis: Redis down)
 * after the connection was already taken from the pool.
 */
describe('DomainSender: a body that cannot be opened', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it(`gives the connection back: after ${MAX_PER_HOST + 1} such failures (maxConnectionsPerHost ${MAX_PER_HOST}) the next message to that MX goes, on the same connection`, async () => {
    const mx = await new TestMx().start();
    const dir = mkdtempSync(join(tmpdir(), 'postern-sender-'));
    const config = validateConfig(testConfigInput(dir, { delivery: { pool: { maxConnectionsPerHost: MAX_PER_HOST }, routes: { 'partner.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } }));
    const spool = new FsSpool(join(dir, 'spool'));
    await spool.open();
    const logger = createLogger('silent');
    const pool = new ConnectionPool(config, logger);
    cleanup.push(async () => {
      await pool.closeAll();
      await mx.stop();
      await spool.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const sender = new DomainSender(new Router(config.delivery, new DeliveryDns(undefined, 1000)), pool, logger);

    const gone = await queueMessage(spool);
    await spool.remove(gone.id);
    for (let i = 0; i <= MAX_PER_HOST; i++) {
      await expect(within(5000, sender.send(gone, outgoing(spool, gone)), `failing send ${i + 1}`)).rejects.toThrow(/queue: no message/);
    }

    const kept = await queueMessage(spool);
    const outcomes = await within(5000, sender.send(kept, outgoing(spool, kept)), 'the send after them');
    expect(outcomes).toMatchObject([{ rcpt: 'pat@partner.test', result: 'delivered' }]);
    expect(mx.messages.map((m) => m.rcptTo)).toEqual([['pat@partner.test']]);
    // The connection the failures took was untouched and went back to the pool for reuse.
    expect(mx.connections).toBe(1);
  });
});

/**
 * partner.test has two MX hosts (127.0.0.2, 127.0.0.3). The first takes one recipient and
 * answers 451 for the other, which goes on to the second; the body cannot be opened for
 * it (the queue failed meanwhile). The recipient the first host took stays delivered:
 * thrown, the whole attempt was deferred and it would have been sent the message again.
 */
describe('DomainSender: the body fails at a later address', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('keeps what an earlier address settled and defers only the recipients left', async () => {
    const dns = await new TestDns({
      'partner.test': { MX: [{ exchange: 'mx1.partner.test', priority: 10 }, { exchange: 'mx2.partner.test', priority: 20 }] },
      'mx1.partner.test': { A: ['127.0.0.2'] },
      'mx2.partner.test': { A: ['127.0.0.3'] },
    }).start();
    const [mx1, mx2] = await startMxHosts([
      { host: '127.0.0.2', rcptReply: (rcpt) => (rcpt.startsWith('later') ? [451, '4.3.2 try again later'] : undefined) },
      { host: '127.0.0.3' },
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'postern-sender-'));
    const config = validateConfig(testConfigInput(dir, { delivery: { mxPort: mx1!.port, tls: { default: 'none' } } }));
    const spool = new FsSpool(join(dir, 'spool'));
    await spool.open();
    const logger = createLogger('silent');
    const pool = new ConnectionPool(config, logger);
    cleanup.push(async () => {
      await pool.closeAll();
      await mx1!.stop();
      await mx2!.stop();
      await dns.stop();
      await spool.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const sender = new DomainSender(new Router(config.delivery, new DeliveryDns([`127.0.0.1:${dns.port}`], 1000)), pool, logger);

    const e = await queueMessage(spool, ['now@partner.test', 'later@partner.test']);
    let opened = 0;
    const out: Outgoing = {
      ...outgoing(spool, e),
      open: async () => {
        if (++opened > 1) throw new Error('queue: Redis is not answering');
        return spool.openBody(e.id);
      },
    };
    const outcomes = await within(10_000, sender.send(e, out), 'the send');
    expect(outcomes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ rcpt: 'now@partner.test', result: 'delivered' }),
        expect.objectContaining({ rcpt: 'later@partner.test', result: 'defer', status: '4.3.0', category: 'internal', response: expect.stringMatching(/Redis is not answering/) }),
      ]),
    );
    expect(outcomes).toHaveLength(2);
    expect(mx1!.messages.map((m) => m.rcptTo)).toEqual([['now@partner.test']]);
    expect(mx2!.messages).toEqual([]);
  });
});
