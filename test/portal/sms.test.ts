import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { PortalDelivery } from '../../src/portal/deliver.js';
import { FsPortalStore } from '../../src/portal/fs-store.js';
import type { QueueBackend } from '../../src/queue/backend.js';
import { sendSms, SmsError } from '../../src/portal/sms.js';
import type { Envelope } from '../../src/types.js';
import { testConfigInput } from '../helpers/gateway.js';

/** A provider that answers with the request it got, as some do in their error bodies. */
async function echoingProvider(status: number, extra: Record<string, unknown> = {}): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `cannot send ${form.Body} to ${form.To}`, sid: form.Body, request: form, ...extra }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/2010-04-01` };
}

const provider = (url: string) => ({ url, accountSid: 'AC1', authToken: 'tok', from: '+15550001111' });
const LINK = 'https://postern.test/m/SECRET-LINK-TOKEN';

describe('SMS provider answers never reach logs or delivery reports', () => {
  let refusing: Awaited<ReturnType<typeof echoingProvider>>;
  let accepting: Awaited<ReturnType<typeof echoingProvider>>;
  beforeAll(async () => {
    refusing = await echoingProvider(400);
    accepting = await echoingProvider(201);
  });
  afterAll(async () => {
    for (const p of [refusing, accepting]) await new Promise<void>((r) => p.server.close(() => r()));
  });

  it('a refusal is the HTTP status and a fixed text', async () => {
    const err = await sendSms(provider(refusing.url), '+15551234567', `Sent you a message: ${LINK}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmsError);
    expect(err).toMatchObject({ message: 'SMS provider refused the message: HTTP 400', status: 400 });
  });

  it('an unreachable provider is named by the error code only', async () => {
    const closed = await echoingProvider(500);
    await new Promise<void>((r) => closed.server.close(() => r()));
    await expect(sendSms(provider(closed.url), '+15551234567', LINK)).rejects.toThrow(/^SMS provider not reached \(ECONNREFUSED\)$/);
  });

  it('a message id that is not one (here: the echoed text) is not repeated', async () => {
    expect(await sendSms(provider(accepting.url), '+15551234567', `Sent you a message: ${LINK}`)).toBe('accepted');
  });

  it('a Secure Text notice the provider refuses is deferred without the link in the response or the log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-sms-'));
    const config = validateConfig(testConfigInput(dir, { portal: { sms: { provider: provider(refusing.url) } } }));
    const store = new FsPortalStore(join(dir, 'portal'), [{ id: 'k1', key: randomBytes(32) }]);
    await store.open();
    const lines: string[] = [];
    const log = createLogger('debug', { write: (l: string) => void lines.push(l) });
    const delivery = new PortalDelivery(config, store, {} as QueueBackend, log);
    const envelope = { id: 'Q1', mailFrom: 'dr@client.test' } as Envelope;
    const [outcome] = await delivery.deliver(envelope, { recipients: [] }, Buffer.from('From: dr@client.test\r\nSubject: x\r\n\r\nbody\r\n'), ['12025550143@secure.text'], 'test');
    expect(outcome).toMatchObject({ result: 'defer', status: '4.4.0', response: 'SMS provider refused the message: HTTP 400' });
    expect(JSON.stringify(outcome) + lines.join('')).not.toMatch(/\/m\/[A-Za-z0-9_-]{20,}/);
  });
});

describe('SMS provider refusals: an invalid number bounces at once, anything else is retried', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  });

  /** What the portal method makes of one answer of the provider. */
  async function outcomeFor(status: number, extra: Record<string, unknown>) {
    const p = await echoingProvider(status, extra);
    servers.push(p.server);
    const dir = mkdtempSync(join(tmpdir(), 'postern-sms-'));
    const config = validateConfig(testConfigInput(dir, { portal: { sms: { provider: provider(p.url) } } }));
    const store = new FsPortalStore(join(dir, 'portal'), [{ id: 'k1', key: randomBytes(32) }]);
    await store.open();
    const lines: string[] = [];
    const delivery = new PortalDelivery(config, store, {} as QueueBackend, createLogger('debug', { write: (l: string) => void lines.push(l) }));
    const [outcome] = await delivery.deliver({ id: 'Q1', mailFrom: 'dr@client.test' } as Envelope, { recipients: [] }, Buffer.from('From: dr@client.test\r\nSubject: x\r\n\r\nbody\r\n'), ['15551234567@secure.text'], 'test');
    // Whatever the provider said, its words (which echo the link) are nowhere.
    expect(JSON.stringify(outcome) + lines.join('')).not.toMatch(/\/m\/[A-Za-z0-9_-]{20,}|cannot send/);
    return outcome;
  }

  it.each([
    [21211, 'not a valid phone number (provider error 21211)'],
    [21614, 'not a mobile number that can receive SMS (provider error 21614)'],
    ['21217', 'not a valid phone number (provider error 21217)'],
  ])('HTTP 400 with code %s: 5.1.3 now, the reason in our words', async (code, why) => {
    expect(await outcomeFor(400, { code })).toEqual({ rcpt: '15551234567@secure.text', result: 'bounce', status: '5.1.3', category: 'portal', response: `the SMS provider refused +15551234567 for Secure Text: ${why}` });
  });

  it.each([
    [400, { code: 21612 }], // not reachable by SMS now: may pass
    [400, { code: 21408 }], // the region is not enabled on our account: the operator fixes it
    [400, {}],
    [401, { code: 20003 }], // our credentials
    [403, { code: 21211 }], // an invalid-number code, but not the answer that says so
    [429, { code: 20429 }],
    [500, { code: 21211 }],
    [400, { code: 21211, padding: 'x'.repeat(20_000) }], // too long to be read: not taken for a refusal of the number
  ])('HTTP %s with %j: deferred', async (status, extra) => {
    expect(await outcomeFor(status, extra)).toMatchObject({ result: 'defer', status: '4.4.0', response: `SMS provider refused the message: HTTP ${status}` });
  });

  it('sendSms says which refusal it was', async () => {
    const p = await echoingProvider(400, { code: 21211 });
    servers.push(p.server);
    const err = await sendSms(provider(p.url), '+15551234567', LINK).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'SmsError', status: 400, invalidNumber: 'not a valid phone number (provider error 21211)', message: 'SMS provider refused the number: not a valid phone number (provider error 21211), HTTP 400' });
  });
});
