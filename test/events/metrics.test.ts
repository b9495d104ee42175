import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/events/logger.js';
import { GatewayMetrics } from '../../src/events/metrics.js';
import { adminConfig, call, startAdmin, until } from '../api/admin-helpers.js';
import type { TestGateway } from '../helpers/gateway.js';
import type { TestMx } from '../helpers/mx-server.js';
import { scenario } from '../helpers/scenario.js';
import { RawSmtp, sendMail, testMessage } from '../helpers/smtp-client.js';
import { parseMetrics, sample } from './metrics-helpers.js';

describe('metrics from the event bus', () => {
  it('count delivery lines by method, outcome and TLS result; portal and journal events', async () => {
    const logger = createLogger('silent');
    const m = new GatewayMetrics((await import('../../src/events/logger.js')).eventBusOf(logger), {}, { processMetrics: false });
    const delivery = (event: string, status: string, extra: Record<string, unknown>) => logger.info({ event, queueId: 'Q', to: 'a@b.test', status, delays: { queued: 2500 }, ...extra });
    delivery('delivery.sent', 'sent', { method: 'tls', tls: { level: 'verify', version: 'TLSv1.3', verified: true } });
    delivery('delivery.deferred', 'deferred', { method: 'tls', tls: { level: 'verify', version: 'TLSv1.3', verified: false, failure: 'certificate-expired' } });
    delivery('delivery.bounced', 'bounced', { method: 'pgp' });
    delivery('delivery.sent', 'sent', { method: 'tls', tls: { level: 'may', verified: false } });
    logger.info({ event: 'portal.login', identity: 'x' });
    logger.warn({ event: 'portal.login-failed', identity: 'x' });
    logger.warn({ event: 'portal.login-failed', identity: 'x' });
    logger.warn({ event: 'portal.locked', identity: 'x' });
    logger.error({ event: 'archive.journal-failed', queueId: 'Q', sink: 'smtp' });
    // Webhook metrics are counted by the senders themselves, not off these lines (webhooks-metrics.test.ts).
    logger.warn({ event: 'webhook.failed', host: '127.0.0.1' });
    logger.error({ event: 'webhook.gave-up', host: '127.0.0.1' });
    // Below info never reaches the bus, and lines without an event code are not counted.
    logger.debug({ event: 'delivery.sent', status: 'sent', method: 'tls' });
    logger.info({ status: 'sent' });
    const f = parseMetrics(await m.registry.metrics());
    expect(sample(f, 'postern_recipients_total', { method: 'tls', outcome: 'sent' })).toBe(2);
    expect(sample(f, 'postern_recipients_total', { method: 'tls', outcome: 'deferred' })).toBe(1);
    expect(sample(f, 'postern_recipients_total', { method: 'pgp', outcome: 'bounced' })).toBe(1);
    expect(sample(f, 'postern_tls_outcomes_total', { result: 'success', level: 'verify' })).toBe(1);
    expect(sample(f, 'postern_tls_outcomes_total', { result: 'certificate-expired', level: 'verify' })).toBe(1);
    expect(sample(f, 'postern_tls_outcomes_total', { result: 'cleartext', level: 'may' })).toBe(1);
    // The delay is observed when a recipient is delivered (twice here, 2.5 s each), in seconds.
    expect(sample(f, 'postern_delivery_delay_seconds')).toBe(2);
    const delay = f.find((x) => x.name === 'postern_delivery_delay_seconds')?.metrics[0];
    expect(Number(delay?.sum)).toBeCloseTo(5, 5);
    expect(delay?.buckets?.['2.5']).toBe('2');
    expect(delay?.buckets?.['1']).toBe('0');
    expect(sample(f, 'postern_portal_logins_total')).toBe(1);
    expect(sample(f, 'postern_portal_login_failures_total')).toBe(2);
    expect(sample(f, 'postern_portal_locks_total')).toBe(1);
    expect(sample(f, 'postern_journal_failures_total', { sink: 'smtp' })).toBe(1);
    expect(f.find((x) => x.name === 'postern_webhook_failures_total')?.metrics).toEqual([]);
    expect(f.find((x) => x.name === 'postern_webhook_given_up_total')?.metrics).toEqual([]);
    m.close();
    logger.info({ event: 'portal.login', identity: 'x' });
    expect(sample(parseMetrics(await m.registry.metrics()), 'postern_portal_logins_total')).toBe(1);
  });
});

describe('metrics of a real gateway', () => {
  const s = scenario();
  let gw: TestGateway;
  let mx: TestMx;
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  beforeAll(async () => {
    mx = await s.mx();
    gw = await s.gateway({ admin: await adminConfig(), delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'may' } } } });
    admin = await startAdmin(gw);
  });
  afterAll(async () => {
    await admin?.close();
  });

  const scrape = async () => {
    const r = await call(`${admin.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseMetrics(r.text);
  };

  it('/metrics needs no key by default and counters move by exactly what was sent', async () => {
    const before = await scrape();
    const N = 4;
    for (let i = 0; i < N; i++) {
      const r = await sendMail(gw.port, { from: 'sender@client.test', to: [`a${i}@dest.test`, `b${i}@dest.test`], raw: testMessage({ subject: `metrics ${i}` }) });
      expect(r.ok).toBe(true);
    }
    // One refused at RCPT (relay-test address) and one refused at the end of DATA (bare LF).
    const c = await RawSmtp.connect(gw.port);
    await c.command('EHLO client.test');
    expect(await c.command('MAIL FROM:<sender@client.test>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<a%b@dest.test>')).toMatch(/^550 5\.7\.1/);
    expect(await c.command('RCPT TO:<ok@dest.test>')).toMatch(/^250/);
    expect(await c.command('DATA')).toMatch(/^354/);
    c.write('Subject: bare\r\n\r\nline with a bare LF\nhere\r\n.\r\n');
    expect(await c.read()).toMatch(/^554 5\.6\.0/);
    await c.command('QUIT');

    // One transaction per message: both recipients share the domain.
    await mx.waitFor(N);
    expect(mx.messages.flatMap((m) => m.rcptTo)).toHaveLength(2 * N);
    await until(() => gw.events('delivery.sent').length === 2 * N, 10_000, 'delivery lines');
    await until(() => gw.gateway.queue.stats().depth === 0, 10_000, 'empty queue');
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => sample(after, name, labels) - sample(before, name, labels);
    expect(delta('postern_messages_accepted_total')).toBe(N);
    expect(delta('postern_smtp_connections_total', { result: 'accepted' })).toBe(N + 1);
    expect(delta('postern_smtp_rejections_total', { stage: 'rcpt', code: '550' })).toBe(1);
    expect(delta('postern_smtp_rejections_total', { stage: 'data', code: '554' })).toBe(1);
    expect(delta('postern_messages_rejected_total', { code: '554' })).toBe(1);
    expect(delta('postern_recipients_total', { method: 'tls', outcome: 'sent' })).toBe(2 * N);
    expect(delta('postern_delivery_delay_seconds')).toBe(2 * N);
    // The test MX offers no STARTTLS and the route's level is `may`: clear text, counted as such.
    expect(delta('postern_tls_outcomes_total', { result: 'cleartext', level: 'may' })).toBe(2 * N);
    expect(sample(after, 'postern_queue_messages')).toBe(0);
    expect(sample(after, 'postern_queue_oldest_message_age_seconds')).toBe(0);
    expect(sample(after, 'postern_ready')).toBe(1);
    // prom-client's process metrics are there too.
    expect(after.some((f) => f.name === 'process_cpu_seconds_total')).toBe(true);
    expect(after.some((f) => f.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('queue gauges follow the queue at scrape time', async () => {
    await s.stopMx(mx);
    const r = await sendMail(gw.port, { from: 'sender@client.test', to: ['late@dest.test'], raw: testMessage({ subject: 'waits' }) });
    expect(r.ok).toBe(true);
    await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === r.queueId);
    await new Promise((res) => setTimeout(res, 1100));
    const f = await scrape();
    expect(sample(f, 'postern_queue_messages')).toBe(1);
    expect(sample(f, 'postern_queue_oldest_message_age_seconds')).toBeGreaterThanOrEqual(1);
    expect(sample(f, 'postern_recipients_total', { method: 'tls', outcome: 'deferred' })).toBeGreaterThanOrEqual(1);
  });
});
