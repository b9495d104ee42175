import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { testConfigInput } from '../helpers/gateway.js';
import { capturedLogger, eventually, startWebhookSender, tempDir, type Line } from './helpers.js';
import { freePort } from './webhook-receiver.js';

const SECRET = 'whsec-test-resume-0b7e2c91d4';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The file outbox across restarts: a failing delivery carries on its backoff where it
 * was (its attempt count, and not before its next attempt was due), and giveUpAfter
 * counts from the event, whatever restarts came between. The backoff started again from
 * initialDelay, with an attempt at once, at every start: a receiver that was down got a
 * burst of attempts at each restart, and the give-up said fewer attempts than were made.
 */
describe('webhook deliveries resume their schedule after a restart (file outbox)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  const sender = (dataDir: string, url: string, retry: { initialDelay: string; maxDelay: string; giveUpAfter: string }) =>
    startWebhookSender(cleanup, { config: validateConfig(testConfigInput(dataDir, { webhooks: [{ url, events: ['delivered'], secret: SECRET, timeout: '2s', retry }] })), dataDir });
  const delivered = (logger: ReturnType<typeof capturedLogger>['logger'], n: string) => logger.info({ event: 'delivery.sent', queueId: n, to: `${n}@dest.test`, status: 'sent' }, 'delivered');
  const failed = (lines: Line[]) => lines.filter((l) => l.event === 'webhook.failed' && typeof l.attempt === 'number');

  it('a restart carries on the attempt count, and makes the next attempt when it was due, not at once', async () => {
    const dataDir = tempDir();
    const url = `http://127.0.0.1:${await freePort()}/`; // nothing listens: every attempt fails
    const retry = { initialDelay: '400ms', maxDelay: '1h', giveUpAfter: '1h' };
    const a = await sender(dataDir, url, retry);
    delivered(a.logger, 'R1');
    // Attempts at 0, 0.4 s and 1.2 s; the fourth is due 1.6 s after the third.
    const third = await eventually(() => failed(a.lines).find((l) => l.attempt === 3), 'three failed attempts');
    await a.close();

    const b = await sender(dataDir, url, retry);
    const next = await eventually(() => failed(b.lines)[0], 'the first attempt after the restart', 10_000);
    expect(next.attempt).toBe(4);
    expect(Date.parse(String(next.time))).toBeGreaterThanOrEqual(Date.parse(String(third.nextAttemptAt)));
    // The backoff goes on doubling from there: the fifth is 3.2 s after the fourth.
    expect(Date.parse(String(next.nextAttemptAt)) - Date.parse(String(next.time))).toBeGreaterThan(3000);
  }, 20_000);

  it('giveUpAfter counts from the event across a restart: one past it while the sender was down is given up at the start, with the attempts made before', async () => {
    const dataDir = tempDir();
    const url = `http://127.0.0.1:${await freePort()}/`;
    const retry = { initialDelay: '200ms', maxDelay: '200ms', giveUpAfter: '1500ms' };
    const a = await sender(dataDir, url, retry);
    delivered(a.logger, 'G1');
    await eventually(() => failed(a.lines).some((l) => l.attempt === 3), 'three failed attempts');
    await a.close();
    const made = failed(a.lines).length;
    await sleep(1600); // the event is older than giveUpAfter now

    const b = await sender(dataDir, url, retry);
    const gaveUp = await eventually(() => b.lines.find((l) => l.event === 'webhook.gave-up'), 'the give-up line');
    expect(gaveUp).toMatchObject({ webhookEvent: 'delivered', attempts: made, reason: 'past retry.giveUpAfter (1500 ms) before its next attempt' });
    expect(failed(b.lines)).toEqual([]);
  }, 20_000);
});
