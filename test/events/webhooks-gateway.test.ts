import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/events/webhooks-sign.js';
import { until } from '../api/admin-helpers.js';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { sendNumbered, type LoadTally } from '../helpers/load-sender.js';
import { TestMx } from '../helpers/mx-server.js';
import { freePort, WebhookReceiver } from './webhook-receiver.js';

const SECRET = 'whsec-gateway-restart-8c41d2';

/** The queue id Postern put in its Received header of a message an MX got. */
const queueIdOf = (raw: Buffer) => /\(Postern\) with \S+ id (\S+)/.exec(raw.toString())?.[1] ?? '';

/**
 * Webhooks through the gateway as production runs it (`postern start`, its own process,
 * the file outbox under <dataDir>/webhooks/0): events of real mail, with the receiver
 * down across a restart — graceful, and kill -9.
 */
describe('webhooks of a real gateway across restarts', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function setup(name: string) {
    const dir = mkdtempSync(join(tmpdir(), `postern-hooks-${name}-`));
    const mx = await new TestMx().start();
    const receiver = new WebhookReceiver(await freePort());
    const gateways: ChildGateway[] = [];
    cleanup.push(async () => {
      for (const g of gateways) g.killAll();
      await receiver.stop();
      await mx.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const config = testConfigInput(join(dir, 'data'), {
      workers: 1,
      log: { level: 'info' },
      delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } }, retry: { initialDelay: '200ms', maxDelay: '1s' } },
      webhooks: [{ url: receiver.url, events: ['accepted', 'delivered'], secret: SECRET, timeout: '2s', retry: { initialDelay: '200ms', maxDelay: '500ms', giveUpAfter: '1h' } }],
    });
    const start = async (workers = 1) => {
      const g = await startChildGateway(dir, { ...config, workers });
      gateways.push(g);
      return g;
    };
    return { dir, mx, receiver, start };
  }

  const checkSignatures = (receiver: WebhookReceiver) => {
    for (const r of receiver.received) {
      expect(verifySignature(String(r.headers['postern-signature']), r.body, SECRET)).toBe(true);
      expect(r.json.id).toBe(r.headers['postern-delivery']);
    }
    expect(new Set(receiver.ids()).size).toBe(receiver.received.length);
  };

  it('receiver down while mail flows, gateway stopped and started again on the same data, receiver up: every event arrives exactly once, signed', async () => {
    const { mx, receiver, start } = await setup('restart');
    const a = await start();
    const tally: LoadTally = { acked: new Set(), refused: [] };
    let n = 0;
    await sendNumbered(a.port, () => (n < 6 ? n++ : undefined), tally, undefined, 'restart');
    expect(tally.acked.size).toBe(6);
    await mx.waitFor(6);
    await until(() => a.logs.filter((l) => l.event === 'delivery.sent').length === 6, 10_000, 'six deliveries');
    await until(() => a.logs.filter((l) => l.event === 'webhook.failed').length >= 12, 10_000, 'failed attempts while the receiver is down');
    a.proc.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);

    await receiver.start();
    const b = await start();
    await until(() => receiver.received.length >= 12, 20_000, 'twelve events');
    await new Promise((r) => setTimeout(r, 1000)); // nothing more comes
    const queueIds = a.logs.filter((l) => l.event === 'queue.accepted').map((l) => String(l.queueId));
    const got = receiver.received.map((r) => `${r.json.event} ${String(r.json.data.queueId)}`).sort();
    expect(got).toEqual(queueIds.flatMap((id) => [`accepted ${id}`, `delivered ${id}`]).sort());
    checkSignatures(receiver);
    expect(b.logs.filter((l) => l.event === 'webhook.delivered')).toHaveLength(12);
  });

  it('from two workers to one: the events waiting in the outbox of the shard that goes are sent by the single process, each once', async () => {
    const { dir, mx, receiver, start } = await setup('shrink');
    const a = await start(2);
    await until(() => a.logs.some((l) => l.event === 'gateway.ready' && l.workers === 2), 15_000, 'both workers ready');
    const tally: LoadTally = { acked: new Set(), refused: [] };
    let n = 0;
    // Sessions at once, so the kernel hands both workers some.
    await Promise.all(Array.from({ length: 4 }, () => sendNumbered(a.port, () => (n < 16 ? n++ : undefined), tally, undefined, 'shrink')));
    expect(tally.acked.size).toBe(16);
    await mx.waitFor(16);
    await until(() => a.logs.filter((l) => l.event === 'delivery.sent').length === 16, 10_000, 'sixteen deliveries');
    a.proc.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
    const accepted = a.logs.filter((l) => l.event === 'queue.accepted');
    expect(accepted).toHaveLength(16);
    expect(new Set(accepted.map((l) => l.shard))).toEqual(new Set([0, 1]));
    // The receiver was down all along: every event waits in webhooks/0 or webhooks/1.
    expect(readdirSync(join(dir, 'data', 'webhooks')).sort()).toEqual(['0', '1', 'primary']);

    await receiver.start();
    const b = await start(1);
    const shard1Events = 2 * accepted.filter((l) => l.shard === 1).length;
    expect(b.logs.find((l) => l.event === 'gateway.start')?.adoptedWebhookEvents).toBe(shard1Events);
    await until(() => receiver.received.length >= 32, 20_000, 'thirty-two events');
    await new Promise((r) => setTimeout(r, 1000)); // nothing more comes
    const got = receiver.received.map((r) => `${r.json.event} ${String(r.json.data.queueId)}`).sort();
    expect(got).toEqual(accepted.flatMap((l) => [`accepted ${String(l.queueId)}`, `delivered ${String(l.queueId)}`]).sort());
    checkSignatures(receiver);
    // One process has no primary: the primary's outbox went into shard 0 too (it had nothing waiting).
    expect(readdirSync(join(dir, 'data', 'webhooks')).sort()).toEqual(['0']);
  });

  it('kill -9 while mail is being delivered: no event is lost for mail delivered before the kill', async () => {
    const { mx, receiver, start } = await setup('kill');
    const a = await start();
    const TOTAL = 80;
    const tally: LoadTally = { acked: new Set(), refused: [] };
    let n = 0;
    const sending = Promise.all(Array.from({ length: 4 }, () => sendNumbered(a.port, () => (n < TOTAL ? n++ : undefined), tally, undefined, 'kill')));
    // Killed in the middle of the deliveries, the receiver down all the while: right as
    // a delivery line is read, when that message's state is being saved.
    const sent = () => a.logs.filter((l) => l.event === 'delivery.sent').length;
    const deadline = Date.now() + 30_000;
    while (sent() < TOTAL / 2 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    const sentAtKill = sent();
    a.killAll();
    // The kill came after half the deliveries, not at the deadline before them.
    expect(sentAtKill).toBeGreaterThanOrEqual(TOTAL / 2);
    await sending;
    expect((await a.exited).signal).toBe('SIGKILL');
    const acceptedBefore = a.logs.filter((l) => l.event === 'queue.accepted').map((l) => String(l.queueId));

    await receiver.start();
    const b = await start();
    // Every message the gateway acknowledged is delivered in the end (again, if its state was not saved).
    const acked = new Set([...acceptedBefore, ...b.logs.filter((l) => l.event === 'queue.accepted').map((l) => String(l.queueId))]);
    const deliveredIds = () => new Set(mx.messages.map((m) => queueIdOf(m.raw)));
    await until(() => [...acceptedBefore].every((id) => deliveredIds().has(id)), 30_000, 'every accepted message delivered');
    // Every message the MX got has its "delivered" event — also those settled before the
    // kill, whose state (removed from the queue) says they will never be delivered again.
    const deliveredEvents = () => new Set(receiver.received.filter((r) => r.json.event === 'delivered').map((r) => String(r.json.data.queueId)));
    const missing = () => [...deliveredIds()].filter((id) => !deliveredEvents().has(id));
    await until(() => missing().length === 0, 20_000, 'a delivered event for every delivered message').catch(() => undefined);
    expect(missing()).toEqual([]);
    // An event stands for a delivery: never more of them for a message than the MX got it.
    const receipts = new Map<string, number>();
    for (const m of mx.messages) receipts.set(queueIdOf(m.raw), (receipts.get(queueIdOf(m.raw)) ?? 0) + 1);
    for (const r of receiver.received.filter((x) => x.json.event === 'delivered')) expect(receipts.get(String(r.json.data.queueId)) ?? 0).toBeGreaterThanOrEqual(1);
    const perMessage = new Map<string, number>();
    for (const r of receiver.received.filter((x) => x.json.event === 'delivered')) perMessage.set(String(r.json.data.queueId), (perMessage.get(String(r.json.data.queueId)) ?? 0) + 1);
    for (const [id, count] of perMessage) expect(count, id).toBeLessThanOrEqual(receipts.get(id) ?? 0);
    expect(acked.size).toBeGreaterThanOrEqual(TOTAL / 2);
    checkSignatures(receiver);
  });
});
