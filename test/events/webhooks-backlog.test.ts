import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { testConfigInput } from '../helpers/gateway.js';
import { capturedLogger, eventually, startWebhookSender, tempDir, type Line } from './helpers.js';
import { freePort, WebhookReceiver } from './webhook-receiver.js';

const SECRET = 'whsec-test-backlog-5d2a483f9a1c';

interface HookOptions {
  timeout: string;
  retry: { initialDelay: string; maxDelay: string; giveUpAfter: string };
  maxPendingPerHook?: number;
}

/** Each outbox line's delivery id, and the queueId of the event it carries. */
function outboxState(dataDir: string): { pending: string[]; gaveUp: string[] } {
  const dir = join(dataDir, 'webhooks', '0');
  const lines = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as { t: string; id: string; payload?: { data: { queueId: string } } });
  const queueId = new Map(lines.filter((l) => l.t === 'event').map((l) => [l.id, l.payload?.data.queueId as string]));
  const settled = new Set(lines.filter((l) => l.t === 'done' || l.t === 'gave-up').map((l) => l.id)); // retry lines settle nothing
  return {
    pending: [...queueId].filter(([id]) => !settled.has(id)).map(([, q]) => q).sort(),
    gaveUp: lines.filter((l) => l.t === 'gave-up').map((l) => queueId.get(l.id) as string).sort(),
  };
}

const gaveUpLines = (lines: Line[]) => lines.filter((l) => l.event === 'webhook.gave-up');
const backlogCount = (lines: Line[]) => gaveUpLines(lines).reduce((n, l) => n + (typeof l.count === 'number' ? l.count : 0), 0);
const ids = (prefix: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${String(from + i).padStart(2, '0')}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('webhook backlog limits (file outbox)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  const sender = (dataDir: string, url: string, o: HookOptions) =>
    startWebhookSender(cleanup, {
      config: validateConfig(testConfigInput(dataDir, { webhooks: [{ url, events: ['delivered'], secret: SECRET, timeout: o.timeout, retry: o.retry }] })),
      dataDir,
      maxPendingPerHook: o.maxPendingPerHook,
    });

  const delivered = (logger: ReturnType<typeof capturedLogger>['logger'], n: string) => logger.info({ event: 'delivery.sent', queueId: n, to: `${n}@dest.test`, status: 'sent' }, 'delivered');

  it('a receiver that holds every connection: deliveries older than giveUpAfter are given up when their turn comes, never sent', async () => {
    const dataDir = tempDir();
    const receiver = await new WebhookReceiver().start();
    receiver.hang = true; // takes each request and never answers it: every attempt lasts its whole timeout
    cleanup.push(() => receiver.stop());
    const a = await sender(dataDir, receiver.url, { timeout: '4s', retry: { initialDelay: '100ms', maxDelay: '100ms', giveUpAfter: '500ms' } });
    for (const n of ids('H', 1, 10)) delivered(a.logger, n);
    await eventually(() => receiver.requests === 4, 'four requests held by the receiver');
    await sleep(700); // every one of the ten is older than giveUpAfter now; four are still in flight
    delivered(a.logger, 'H11'); // the flow goes on: the dispatcher looks at what is due

    // The six that waited are given up at once, unsent, while the receiver still holds the four.
    const waited = await eventually(() => {
      const g = gaveUpLines(a.lines);
      return g.length >= 6 ? g : undefined;
    }, 'the six waiting deliveries given up without an attempt', 2000);
    expect(waited.map((l) => l.attempts)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(waited[0]).toMatchObject({ host: new URL(receiver.url).host, webhookEvent: 'delivered' });
    expect(receiver.requests).toBe(4);

    // The four time out and are given up after their one attempt; H11, too old by then, without one.
    await eventually(() => gaveUpLines(a.lines).length === 11, 'all eleven given up', 10_000);
    await sleep(200);
    expect(receiver.requests).toBe(4);
    expect(gaveUpLines(a.lines).map((l) => l.attempts).sort()).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    await a.close();
    expect(outboxState(dataDir).pending).toEqual([]);
  }, 20_000);

  it('beyond maxPending a webhook gives up its oldest deliveries, logged with their count; a restart loads no more than its bound', async () => {
    const dataDir = tempDir();
    const receiver = new WebhookReceiver(await freePort()); // down until the restart
    const o = { timeout: '2s', retry: { initialDelay: '1h', maxDelay: '1h', giveUpAfter: '24h' } };

    const a = await sender(dataDir, receiver.url, { ...o, maxPendingPerHook: 8 });
    for (const n of ids('B', 1, 12)) delivered(a.logger, n);
    await eventually(() => backlogCount(a.lines) === 4, 'the backlog give-up line', 5000);
    await eventually(() => outboxState(dataDir).gaveUp.length === 4, 'gave-up lines in the outbox');
    expect(outboxState(dataDir)).toEqual({ pending: ids('B', 5, 12), gaveUp: ids('B', 1, 4) });

    for (const n of ids('B', 13, 16)) delivered(a.logger, n);
    await eventually(() => backlogCount(a.lines) === 8, 'the next backlog give-up line');
    await eventually(() => outboxState(dataDir).gaveUp.length === 8, 'gave-up lines in the outbox');
    expect(outboxState(dataDir)).toEqual({ pending: ids('B', 9, 16), gaveUp: ids('B', 1, 8) });
    const line = gaveUpLines(a.lines).find((l) => l.count);
    expect(line).toMatchObject({ host: new URL(receiver.url).host, maxPending: 8 });
    expect(a.printed.join('')).not.toContain(SECRET);
    await a.close();

    // A restart with a smaller bound loads only the newest five; the receiver is up now.
    // Each resumes its backoff (next attempt an hour after its first), but no later than
    // maxDelay from the start: made 100ms meanwhile, so they go at once.
    await receiver.start();
    cleanup.push(() => receiver.stop());
    const b = await sender(dataDir, receiver.url, { ...o, retry: { initialDelay: '100ms', maxDelay: '100ms', giveUpAfter: '24h' }, maxPendingPerHook: 5 });
    await eventually(() => receiver.received.length >= 5, 'the five kept deliveries');
    await sleep(300);
    expect(receiver.received.map((r) => r.json.data.queueId).sort()).toEqual(ids('B', 12, 16));
    expect(gaveUpLines(b.lines)).toMatchObject([{ host: new URL(receiver.url).host, count: 3, maxPending: 5 }]);
    await b.close();
    expect(outboxState(dataDir).pending).toEqual([]);
  }, 20_000);
});
