import { afterEach, describe, expect, it } from 'vitest';
import { deepMerge, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { TestMx, type MxOptions } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { queueBackendCases } from '../helpers/queue-backends.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

// The retry jitter is drawn once per attempt of a message, not per recipient: recipients
// deferred together come due together, so one message goes out again in one transaction
// per domain, and recipients that expire together are named in one bounce report.

const stops: { stop(): Promise<void> }[] = [];
const backends = await queueBackendCases();
// Reports go to the sender over verified TLS (rule dsn): the sender's MX has a certificate the gateway trusts.
const senderCa = createTestCa('Sender MX CA');

describe.each(backends)('recipients deferred together ($name queue)', (backend) => {
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s.stop().catch(() => undefined);
    await backend.cleanup();
  });

  async function mx(o: MxOptions = {}): Promise<TestMx> {
    const m = await new TestMx(o).start();
    stops.push(m);
    return m;
  }

  async function gateway(routes: Record<string, number>, retry: Record<string, string>): Promise<TestGateway> {
    const delivery = { tls: { trust: [senderCa.caFile] }, routes: Object.fromEntries(Object.entries(routes).map(([domain, port]) => [domain, { nexthop: `127.0.0.1:${port}`, tls: 'none' }])), retry };
    const g = await startTestGateway(deepMerge(backend.overrides(), { delivery }));
    stops.push(g);
    expect(g.config.queue.backend).toBe(backend.name);
    return g;
  }

  const isFinal = (l: { event?: string }) => l.event === 'delivery.sent' || l.event === 'delivery.bounced';

  // Skipped only on a developer machine without Redis on 127.0.0.1:6379 (under CI=true queueBackendCases throws).
  it.skipIf(!backend.available)('20 recipients of one domain refused once come due at one time and go again in one transaction', async () => {
    let refused = false;
    // The first transaction is refused at MAIL FROM: all 20 deferred in one attempt.
    const dest = await mx({ mailReply: () => (refused ? undefined : ((refused = true), [451, '4.3.0 Try again later'])) });
    // Jitter is up to 10% of 2 s: drawn per recipient, 20 draws fall far apart.
    const g = await gateway({ 'dest.test': dest.port }, { initialDelay: '2s', maxDelay: '2s', lifetime: '1h' });
    const to = Array.from({ length: 20 }, (_, i) => `r${i}@dest.test`);
    const sent = await sendMail(g.port, { from: 's@client.test', to, raw: testMessage() });
    expect(sent.ok).toBe(true);

    for (const rcpt of to) await g.waitForLog((l) => l.event === 'delivery.sent' && l.to === rcpt);
    expect(dest.messages.map((m) => m.rcptTo.length)).toEqual([20]);
    const deferred = g.events('delivery.deferred');
    expect(deferred.map((l) => l.to).sort()).toEqual([...to].sort());
    expect(new Set(deferred.map((l) => l.nextAttemptAt)).size).toBe(1);
  });

  it.skipIf(!backend.available)('three recipients greylisted until the lifetime ends get one report naming them all', async () => {
    // Every DATA takes 600 ms and is refused. Drawn per recipient, the jitter put their
    // second attempts up to 200 ms apart, shortly before the end of the lifetime (3 s):
    // the first recipient's attempt ended past it (bounced, a report), then the others'
    // (bounced, more reports). Drawn once, all are always in the same attempt.
    const dest = await mx({ dataDelay: () => 600, dataReply: () => [451, '4.7.1 Greylisted, please retry'] });
    const sender = await mx({ tls: senderCa.issue(['127.0.0.1']) });
    const g = await gateway({ 'dest.test': dest.port, 'client.test': sender.port }, { initialDelay: '2s', maxDelay: '2s', lifetime: '3s' });
    const to = ['a@dest.test', 'b@dest.test', 'c@dest.test'];
    const sent = await sendMail(g.port, { from: 's@client.test', to, raw: testMessage() });
    expect(sent.ok).toBe(true);

    for (const rcpt of to) await g.waitForLog((l) => isFinal(l) && l.to === rcpt);
    for (const rcpt of to) expect(g.logs.find((l) => isFinal(l) && l.to === rcpt)).toMatchObject({ event: 'delivery.bounced', dsn: '5.4.7' });
    // Each report is queued after the bounce lines of its attempt.
    for (const rcpt of to) await g.waitForLog((l) => l.event === 'dsn.queued' && (l.failed as string[]).includes(rcpt));
    expect(g.events('dsn.queued').map((l) => l.failed)).toEqual([to]);
    await sender.waitFor(1);
    const text = sender.messages[0]!.raw.toString('latin1');
    expect(text.match(/^Final-Recipient: .*$/gm)?.map((f) => f.trim())).toEqual(to.map((r) => `Final-Recipient: rfc822; ${r}`));
  });
});
