import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import type { Outgoing } from '../../src/deliver/domain-sender.js';
import type { Outcome } from '../../src/deliver/outcome.js';
import { Settler } from '../../src/deliver/settle.js';
import type { Variant } from '../../src/deliver/variant.js';
import { DeliveryWorker, type DeliveryStages } from '../../src/deliver/worker.js';
import { createLogger } from '../../src/events/logger.js';
import type { Plan } from '../../src/policy/planner.js';
import type { QueueBackend } from '../../src/queue/backend.js';
import { FsSpool } from '../../src/queue/fs/spool.js';
import { newQueueId } from '../../src/queue/ids.js';
import type { DeliveryState, Envelope, QueuedMessage, RecipientState } from '../../src/types.js';
import { testConfigInput, type LogLine } from '../helpers/gateway.js';

/** A spool whose writes of delivery state can be made to fail (a full disk). */
class FlakySpool extends FsSpool {
  failSaves = false;
  saveCalls = 0;
  leased: string[] = [];
  override async save(id: string, state: DeliveryState): Promise<void> {
    this.saveCalls++;
    if (this.failSaves) throw new Error('ENOSPC: no space left on device, write');
    return super.save(id, state);
  }
  override async lease(now: number, limit: number): Promise<QueuedMessage[]> {
    const batch = await super.lease(now, limit);
    this.leased.push(...batch.map((m) => m.envelope.id));
    return batch;
  }
}

function logSink() {
  const lines: LogLine[] = [];
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  const logger = createLogger('debug', {
    write(line: string) {
      const l = JSON.parse(line) as LogLine;
      lines.push(l);
      for (const w of waiters.filter((x) => x.pred(l))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    },
  });
  const waitFor = (pred: (l: LogLine) => boolean, timeoutMs = 5_000): Promise<LogLine> => {
    const found = lines.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('log line did not appear in time')), timeoutMs);
      waiters.push({ pred, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  };
  return { logger, lines, waitFor };
}

/** Stages around a real spool and settler: who goes where, and what each send answers. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

type Answer = 'delivered' | 'defer' | 'tls-failed';

function stages(queue: QueueBackend, config: ReturnType<typeof validateConfig>, log: ReturnType<typeof logSink>, o: { portal?: DeliveryStages['portal']; plan?: () => void; answer: (rcpt: string, n: number) => Answer }) {
  const sends: string[] = [];
  const planner = {
    subjectTag: () => '[secure]',
    plan: async (_e: Envelope, _s: DeliveryState, due: RecipientState[]): Promise<Plan> => {
      await turn(); // real planning and sending do I/O: the event loop turns meanwhile
      o.plan?.();
      for (const r of due) r.decision ??= { rcpt: r.rcpt, ruleId: 'test', reasons: [], candidates: ['tls', 'portal'], tls: 'verify', onNoMethod: 'portal' };
      const smtp = due.filter((r) => !r.rcpt.endsWith('@portal.test')).map((r) => r.rcpt);
      return { groups: smtp.length ? [{ method: 'tls', rcpts: smtp, minTls: 'none', requireMtaSts: false, stripSubjectTag: false }] : [], portal: due.filter((r) => r.rcpt.endsWith('@portal.test')).map((r) => r.rcpt), held: [] };
    },
  };
  const variants = { build: async (_e: Envelope, v: Variant): Promise<Outgoing> => ({ domain: v.domain, rcpts: v.rcpts, minTls: v.minTls, requireMtaSts: false, open: async () => Buffer.from('x'), size: 1, eightBit: false }) };
  const sender = {
    send: async (_e: Envelope, out: Outgoing): Promise<Outcome[]> =>
      (await turn(), out.rcpts).map((rcpt) => {
        sends.push(rcpt);
        const answer = o.answer(rcpt, sends.filter((s) => s === rcpt).length);
        if (answer === 'delivered') return { rcpt, result: 'delivered', status: '2.0.0', response: '250 ok', category: 'sent', diagnosticType: 'smtp' };
        if (answer === 'defer') return { rcpt, result: 'defer', status: '4.4.1', response: 'connection refused', category: 'connection', diagnosticType: 'x-postern' };
        return { rcpt, result: 'defer', status: '4.7.5', response: 'STARTTLS not offered', category: 'tls:starttls-not-supported', diagnosticType: 'x-postern' };
      }),
  };
  const all = { planner, variants, sender, settler: new Settler(config, queue, log.logger), portal: o.portal } as unknown as DeliveryStages;
  return { all, sends };
}

/** The attempt's state is written once the message is no longer leased. */
const written = (queue: QueueBackend) => vi.waitFor(() => expect(queue.stats().leased).toBe(0));

async function queueMessage(queue: QueueBackend, rcpts: string[]): Promise<string> {
  const writer = await queue.receive({ id: newQueueId(), receivedAt: Date.now(), mailFrom: 'dr@client.test', rcptTo: rcpts, client: { ip: '127.0.0.1', helo: 'c', sessionId: 's' }, bodyType: '7bit', smtpUtf8: false });
  await writer.write(Buffer.from('Subject: x\r\n\r\nhello\r\n'));
  return (await writer.commit()).id;
}

describe('delivery worker: an attempt that fails part-way', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function setup(retry: Record<string, string>) {
    const dir = mkdtempSync(join(tmpdir(), 'postern-worker-'));
    const config = validateConfig(testConfigInput(dir, { delivery: { retry: { ...retry, lifetime: '5d' } } }));
    const queue = new FlakySpool(join(dir, 'spool'));
    await queue.open();
    const log = logSink();
    cleanup.push(async () => {
      await queue.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return { config, queue, log };
  }

  function start(config: ReturnType<typeof validateConfig>, queue: QueueBackend, s: DeliveryStages, log: ReturnType<typeof logSink>) {
    const worker = new DeliveryWorker(config, queue, s, log.logger);
    worker.start();
    cleanup.push(async () => void (await worker.stop(Date.now() + 2_000)));
    return worker;
  }

  it('a failing portal store defers only the portal recipient, with backoff; the one delivered stays delivered', async () => {
    const { config, queue, log } = await setup({ initialDelay: '1h', maxDelay: '2h' });
    let portalCalls = 0;
    const portal = { canServe: () => true, deliver: async () => (portalCalls++, Promise.reject(new Error('ENOSPC: no space left on device'))) } as unknown as DeliveryStages['portal'];
    const s = stages(queue, config, log, { portal, answer: () => 'delivered' });
    const started = Date.now();
    const id = await queueMessage(queue, ['a@mx.test', 'b@portal.test']);
    start(config, queue, s.all, log);
    const deferred = await log.waitFor((l) => l.event === 'delivery.deferred' && l.to === 'b@portal.test');
    expect(deferred).toMatchObject({ category: 'portal', dsn: '4.3.0' });
    expect(String(deferred.response)).toMatch(/portal delivery failed: ENOSPC/);
    expect(s.sends).toEqual(['a@mx.test']);
    expect(portalCalls).toBe(1);
    await written(queue);
    const state = (await queue.get(id))!.state.recipients;
    expect(state.find((r) => r.rcpt === 'a@mx.test')?.status).toBe('delivered');
    const b = state.find((r) => r.rcpt === 'b@portal.test')!;
    expect(b.status).toBe('pending');
    expect(b.nextAttemptAt).toBeGreaterThanOrEqual(started + 3_600_000);
    expect(queue.leased).toEqual([id]);
  });

  it('a crash after sending keeps what it obtained and defers the rest with backoff, never at once', async () => {
    const { config, queue, log } = await setup({ initialDelay: '1h', maxDelay: '2h' });
    // Throws in the portal step, after the sends (a bug, not a portal failure).
    const portal = { canServe: () => { throw new Error('canServe exploded'); } } as unknown as DeliveryStages['portal'];
    const s = stages(queue, config, log, { portal, answer: (rcpt) => (rcpt === 'a@mx.test' ? 'delivered' : 'tls-failed') });
    const started = Date.now();
    const id = await queueMessage(queue, ['a@mx.test', 'c@mx.test']);
    start(config, queue, s.all, log);
    const deferred = await log.waitFor((l) => l.event === 'delivery.deferred' && l.to === 'c@mx.test');
    expect(deferred).toMatchObject({ category: 'internal', dsn: '4.3.0' });
    expect(String(deferred.response)).toMatch(/delivery attempt failed: canServe exploded/);
    expect(log.lines.find((l) => l.event === 'delivery.sent' && l.to === 'a@mx.test')).toBeTruthy();
    expect(s.sends.sort()).toEqual(['a@mx.test', 'c@mx.test']);
    await written(queue);
    const state = (await queue.get(id))!.state.recipients;
    expect(state.find((r) => r.rcpt === 'a@mx.test')?.status).toBe('delivered');
    expect(state.find((r) => r.rcpt === 'c@mx.test')!.nextAttemptAt).toBeGreaterThanOrEqual(started + 3_600_000);
    expect(queue.leased).toEqual([id]);
  });

  it('a crash before sending (planning) defers every due recipient with backoff', async () => {
    const { config, queue, log } = await setup({ initialDelay: '1h', maxDelay: '2h' });
    let plans = 0;
    const s = stages(queue, config, log, {
      plan: () => {
        plans++;
        throw new Error('policy store unreadable');
      },
      answer: () => 'delivered',
    });
    const id = await queueMessage(queue, ['a@mx.test']);
    start(config, queue, s.all, log);
    const deferred = await log.waitFor((l) => l.event === 'delivery.deferred' && l.to === 'a@mx.test');
    expect(deferred).toMatchObject({ category: 'internal' });
    expect(plans).toBe(1);
    expect(s.sends).toEqual([]);
    await written(queue);
    expect((await queue.get(id))!.state.recipients[0]!.attempts).toBe(1);
  });

  it('a state that cannot be written stays leased and is written later: no re-send, no loop', async () => {
    const { config, queue, log } = await setup({ initialDelay: '200ms', maxDelay: '1s' });
    const s = stages(queue, config, log, { answer: (rcpt, n) => (rcpt === 'a@mx.test' || n > 1 ? 'delivered' : 'defer') });
    queue.failSaves = true;
    const id = await queueMessage(queue, ['a@mx.test', 'b@mx.test']);
    start(config, queue, s.all, log);
    const first = await log.waitFor((l) => l.event === 'delivery.error' && l.tries === 1);
    expect(first).toMatchObject({ queueId: id, retryInMs: 200, pending: 1 });
    expect(String(first.err)).toMatch(/ENOSPC/);
    const second = await log.waitFor((l) => l.event === 'delivery.error' && l.tries === 2);
    expect(second).toMatchObject({ retryInMs: 400 });
    // Two writes failed; the message was handed out once and sent once.
    expect(queue.saveCalls).toBe(2);
    expect(queue.leased).toEqual([id]);
    expect(s.sends.sort()).toEqual(['a@mx.test', 'b@mx.test']);
    queue.failSaves = false;
    await log.waitFor((l) => l.event === 'delivery.recovered' && l.queueId === id);
    // The deferred recipient's next attempt comes from the written state; a@ is not sent again.
    await log.waitFor((l) => l.event === 'delivery.sent' && l.to === 'b@mx.test');
    await vi.waitFor(async () => expect(await queue.get(id)).toBeUndefined());
    expect(s.sends.sort()).toEqual(['a@mx.test', 'b@mx.test', 'b@mx.test']);
  });
});

describe('delivery worker: leasing from a queue that fails (Redis down)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('backs off from 1 s doubling to 30 s, one log line per try, and starts again at 1 s after a success; wake-ups end a wait at most once a second', async () => {
    vi.useFakeTimers();
    let failing = true;
    let leases = 0;
    const wakes: (() => void)[] = [];
    const queue = {
      lease: async () => {
        leases++;
        if (failing) throw new Error('Connection is closed.');
        return [];
      },
      // Stale, as the Redis snapshot is during an outage: due in the past.
      nextDueAt: () => (failing ? Date.now() - 1_000 : undefined),
      onWake: (l: () => void) => wakes.push(l),
    } as unknown as QueueBackend;
    const log = logSink();
    const config = validateConfig(testConfigInput(mkdtempSync(join(tmpdir(), 'postern-worker-'))));
    const worker = new DeliveryWorker(config, queue, {} as DeliveryStages, log.logger);
    worker.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(leases).toBe(1);
    // Wake-ups within a second of a failure do not lease either.
    for (const w of wakes) w();
    await vi.advanceTimersByTimeAsync(999);
    expect(leases).toBe(1);
    for (const step of [1_000, 2_000, 4_000, 8_000, 16_000, 30_000]) await vi.advanceTimersByTimeAsync(step);
    const errors = () => log.lines.filter((l) => l.event === 'delivery.error').map((l) => l.retryInMs);
    expect(leases).toBe(7);
    expect(errors()).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    // A wake-up means the queue answered a command: it ends a long wait early, once a second at most.
    for (const w of wakes) w();
    await vi.advanceTimersByTimeAsync(0);
    expect(leases).toBe(7);
    await vi.advanceTimersByTimeAsync(1_000);
    for (let i = 0; i < 50; i++) for (const w of wakes) w();
    await vi.advanceTimersByTimeAsync(0);
    expect(leases).toBe(8);
    expect(errors().at(-1)).toBe(30_000);
    failing = false;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(leases).toBe(9);
    expect(log.lines.filter((l) => l.event === 'delivery.recovered')).toHaveLength(1);
    failing = true;
    for (const w of wakes) w();
    await vi.advanceTimersByTimeAsync(0);
    expect(leases).toBe(10);
    expect(errors().at(-1)).toBe(1_000);
    await worker.stop(Date.now());
  });
});
