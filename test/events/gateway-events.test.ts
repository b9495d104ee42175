import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAudit } from '../../src/events/audit-verify.js';
import { formatTrace } from '../../src/events/trace-format.js';
import { traceMessages, type TraceReport } from '../../src/events/trace.js';
import { verifySignature } from '../../src/events/webhooks-sign.js';
import { TestDns } from '../helpers/dns-server.js';
import { TestMx } from '../helpers/mx-server.js';
import { createTestCa } from '../helpers/pki.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { eventually, gatewayWithBus, runPostern, type BusGateway } from './helpers.js';
import { WebhookReceiver } from './webhook-receiver.js';

const SECRET = 'whsec-gateway-run-5e1d2c3b4a';
const RCPTS = ['alice@dest.test', 'bob@dest.test', 'carol@other.test'];

/**
 * One real gateway run with the audit trail and webhooks subscribed to its bus, as
 * main.ts wires them: a message to three recipients over verified TLS to two MXs, one
 * of which refuses carol once (451) so she has two attempts.
 */
describe('audit trail, trace and webhooks over a gateway run', () => {
  const ca = createTestCa();
  let dns: TestDns;
  let dest: TestMx;
  let other: TestMx;
  let receiver: WebhookReceiver;
  let g: BusGateway;
  let queueId: string;
  let messageId: string;

  beforeAll(async () => {
    let carolRefused = 0;
    dest = await new TestMx({ tls: ca.issue(['mx.dest.test']) }).start();
    other = await new TestMx({ tls: ca.issue(['mx.other.test']), rcptReply: (r) => (r === 'carol@other.test' && carolRefused++ === 0 ? [451, '4.2.0 mailbox busy, try later'] : undefined) }).start();
    dns = await new TestDns({ 'mx.dest.test': { A: ['127.0.0.1'] }, 'mx.other.test': { A: ['127.0.0.1'] } }).start();
    receiver = await new WebhookReceiver().start();
    g = await gatewayWithBus(
      {
        delivery: {
          dns: { servers: [dns.server] },
          tls: { trust: [ca.caFile] },
          routes: { 'dest.test': { nexthop: `mx.dest.test:${dest.port}`, tls: 'verify' }, 'other.test': { nexthop: `mx.other.test:${other.port}`, tls: 'verify' } },
        },
        webhooks: [{ url: receiver.url, events: ['accepted', 'decided', 'delivery.*'], secret: SECRET }],
      },
    );
    const raw = testMessage({ to: RCPTS.join(', '), subject: 'Lab results for patient 4711' });
    messageId = /^Message-ID: (<[^>]+>)/m.exec(raw.toString())?.[1] as string;
    const sent = await sendMail(g.port, { from: 'sender@client.test', to: RCPTS, raw });
    expect(sent.ok).toBe(true);
    queueId = sent.queueId as string;
    await dest.waitFor(1);
    await other.waitFor(1);
    await eventually(() => receiver.received.length >= 8, 'eight webhook deliveries');
    await g.gateway.flushEvents();
  });

  afterAll(async () => {
    await g?.stop(true);
    await receiver?.stop();
    await Promise.all([dest?.stop(), other?.stop(), dns?.stop()]);
  });

  it('the audit trail of the run verifies, and holds decisions and every attempt without content', async () => {
    expect(await verifyAudit(g.dataDir)).toMatchObject({ ok: true, chains: 1 });
    const text = chainText(g.dataDir);
    const records = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; fields: Record<string, unknown> });
    const ofMessage = (event: string) => records.filter((r) => r.event === event && r.fields.queueId === queueId);
    expect(ofMessage('queue.accepted')).toHaveLength(1);
    expect(ofMessage('inspect.done')[0]?.fields.messageId).toBe(messageId);
    expect(ofMessage('policy.decision').map((r) => r.fields.to).sort()).toEqual([...RCPTS].sort());
    expect(ofMessage('delivery.sent')).toHaveLength(3);
    expect(ofMessage('delivery.deferred')).toHaveLength(1);
    expect(text).not.toContain('Lab results'); // the subject is content
    expect(text).not.toContain('Hello from the Postern test suite');
  });

  it('postern trace shows three decisions and their deliveries with TLS details, by queue id, Message-ID or address', async () => {
    const [t] = (await traceMessages(g.dataDir, queueId)) as [TraceReport];
    expect(t).toMatchObject({ queueId, messageId, from: 'sender@client.test', received: { ip: '127.0.0.1', recipients: 3 } });
    expect(t.received?.tls).toMatch(/^TLSv1\.[23]$/);
    // The client's HELO name and cipher suite, as Postern's own Received header gave them to the MX.
    const header = /^Received: from (\S+) .*?\(using (\S+) with cipher (\S+)\)/ms.exec(dest.messages[0]!.raw.toString());
    expect(header).not.toBeNull();
    expect(t.received).toMatchObject({ helo: header?.[1], tls: header?.[2], cipher: header?.[3] });
    expect(t.recipients.map((r) => r.address).sort()).toEqual([...RCPTS].sort());
    for (const r of t.recipients) {
      expect(r.decision).toMatchObject({ method: 'tls' });
      expect(r.final).toBe('delivered');
      const last = r.attempts.at(-1);
      expect(last).toMatchObject({ status: 'sent', relay: expect.stringMatching(/^mx\.(dest|other)\.test\[127\.0\.0\.1\]:\d+$/), tls: { level: 'verify', verified: true, version: expect.stringMatching(/^TLSv1\.[23]$/), cipher: expect.any(String) } });
      expect(last?.delays?.queued).toBeGreaterThanOrEqual(0);
    }
    const carol = t.recipients.find((r) => r.address === 'carol@other.test');
    expect(carol?.attempts.map((a) => a.status)).toEqual(['deferred', 'sent']);
    expect(carol?.attempts[0]?.response).toMatch(/mailbox busy/);

    expect((await traceMessages(g.dataDir, messageId)).map((r) => r.queueId)).toEqual([queueId]);
    expect((await traceMessages(g.dataDir, messageId.slice(1, -1))).map((r) => r.queueId)).toEqual([queueId]);
    expect((await traceMessages(g.dataDir, 'BOB@dest.test')).map((r) => r.queueId)).toEqual([queueId]);
    expect(await traceMessages(g.dataDir, 'nobody@dest.test')).toEqual([]);
    expect(await traceMessages(g.dataDir, queueId, { since: Date.now() + 60_000 })).toEqual([]);

    const human = formatTrace([t]);
    expect(human).toContain(`message ${queueId}`);
    expect(human).toContain(`received from 127.0.0.1 (HELO ${header?.[1]}, session ${t.received?.sessionId}) over ${header?.[2]} with ${header?.[3]}`);
    expect(human).toMatch(/recipient carol@other\.test: delivered/);
    expect(human).toMatch(/attempt 1: deferred via mx\.other\.test/);
    expect(human).toMatch(/TLS: TLSv1\.[23], \S+, certificate verified, required verify/);
    expect(human.match(/decision: rule /g)).toHaveLength(3);
  });

  it('the trace and audit verify commands read the config, print, and set the exit code', async () => {
    const config = join(g.dataDir, 'postern.yaml');
    writeFileSync(config, stringify({ hostname: 'postern.test', dataDir: g.dataDir }));
    const json = await runPostern(['trace', queueId, '--json', '--config', config]);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as TraceReport[])[0]?.recipients).toHaveLength(3);
    const human = await runPostern(['trace', 'alice@dest.test', '--since', '1h', '--config', config]);
    expect(human.stdout).toContain(`message ${queueId}`);
    expect((await runPostern(['trace', 'nobody@dest.test', '--config', config])).code).toBe(1);
    const ok = await runPostern(['audit', 'verify', '--config', config]);
    expect(ok).toMatchObject({ code: 0, stdout: expect.stringMatching(/audit trail intact: \d+ record\(s\) in 1 chain/) });
  });

  it('the webhook receiver got every subscribed event once, each signed', () => {
    const byEvent = (e: string) => receiver.received.filter((r) => r.json.event === e && r.json.data.queueId === queueId);
    expect(byEvent('accepted')).toHaveLength(1);
    expect(byEvent('decided')).toHaveLength(3);
    expect(byEvent('deferred')).toHaveLength(1);
    expect(byEvent('delivered')).toHaveLength(3);
    expect(receiver.received).toHaveLength(8);
    expect(new Set(receiver.ids()).size).toBe(8);
    for (const r of receiver.received) {
      expect(verifySignature(String(r.headers['postern-signature']), r.body, SECRET)).toBe(true);
      expect(r.headers['postern-event']).toBe(r.json.event);
    }
    expect(g.printed.join('')).not.toContain(SECRET);
  });

  // Last: it edits the trail.
  it('editing one line of the trail breaks audit verify at that line; deleting one too', async () => {
    const config = join(g.dataDir, 'postern.yaml');
    const file = join(g.dataDir, 'audit', '0', readdirSync(join(g.dataDir, 'audit', '0')).find((f) => f.endsWith('.jsonl')) as string);
    const original = readFileSync(file, 'utf8');
    const lines = original.split('\n');
    const n = lines.findIndex((l) => l.includes('"event":"delivery.sent"'));
    lines[n] = (lines[n] as string).replace(/"response":"[^"]*"/, '"response":"250 nothing to see here"');
    writeFileSync(file, lines.join('\n'));
    const edited = await runPostern(['audit', 'verify', '--config', config]);
    expect(edited.code).toBe(1);
    expect(edited.stdout).toContain(`${file}:${n + 1}: line altered`);

    writeFileSync(file, original.split('\n').filter((_, i) => i !== n).join('\n'));
    const deleted = await runPostern(['audit', 'verify', '--config', config]);
    expect(deleted.code).toBe(1);
    expect(deleted.stdout).toContain(`${file}:${n + 1}: 1 record(s) missing before this line`);
    writeFileSync(file, original);
    expect((await runPostern(['audit', 'verify', '--config', config])).code).toBe(0);
  });
});

function chainText(dataDir: string): string {
  const dir = join(dataDir, 'audit', '0');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('');
}
