import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/events/logger.js';
import type { KeyLookup } from '../../src/keys/lookup.js';
import { Planner } from '../../src/policy/planner.js';
import { PolicyStore } from '../../src/policy/store.js';
import type { QueueBackend } from '../../src/queue/backend.js';
import type { DeliveryState, Envelope } from '../../src/types.js';

const RAW = Buffer.from('From: dr@client.test\r\nSubject: hello\r\n\r\nNothing sensitive.\r\n');
const envelope: Envelope = { id: 'q1', receivedAt: Date.now(), mailFrom: 'dr@client.test', rcptTo: [], client: { ip: '127.0.0.1', helo: 'x', sessionId: 's' }, bodyType: '7bit', smtpUtf8: false, size: RAW.length };
const queue = { bodyInMemory: () => RAW } as unknown as QueueBackend;
const PGP = { info: { armored: 'armored-key', fingerprint: 'F1' }, source: 'import', from: 'pgp:F1' };

/** A lookup that records who it was asked about and knows one PGP key. */
function fakeKeys(withKey: string[]): { lookup: KeyLookup; asked: string[] } {
  const asked: string[] = [];
  const lookup = {
    pgp: async (a: string) => (asked.push(`pgp:${a}`), withKey.includes(a) ? PGP : undefined),
    smime: async (a: string) => (asked.push(`smime:${a}`), undefined),
  } as unknown as KeyLookup;
  return { lookup, asked };
}

async function planner(policyText: string, keys: KeyLookup): Promise<Planner> {
  const file = join(mkdtempSync(join(tmpdir(), 'postern-planner-')), 'policy.yaml');
  writeFileSync(file, policyText);
  const policies = new PolicyStore(file, createLogger('silent'));
  await policies.start();
  return new Planner(queue, policies, () => policies.current().detectors, createLogger('silent'), { available: (m) => m === 'tls' || m === 'portal', keys });
}

const stateFor = (rcpts: string[]): DeliveryState => ({ recipients: rcpts.map((rcpt) => ({ rcpt, status: 'pending', attempts: 0, nextAttemptAt: 0 })) });

describe('planner: keys are looked up only for recipients who could use them', () => {
  it('a TLS-first policy never asks for keys; pgp before tls does, and the decision records the key', async () => {
    const none = fakeKeys([]);
    const tlsOnly = await planner('defaults: { methods: [tls, pgp], tls: may }\nrules: []\n', none.lookup);
    const s1 = stateFor(['a@dest.test']);
    const p1 = await tlsOnly.plan(envelope, s1, s1.recipients);
    expect(none.asked).toEqual([]);
    expect(p1.groups.map((g) => g.method)).toEqual(['tls']);

    const some = fakeKeys(['pgp@dest.test']);
    const pgpFirst = await planner('defaults: { methods: [pgp, tls], tls: may }\nrules: []\n', some.lookup);
    const s2 = stateFor(['pgp@dest.test', 'other@dest.test']);
    const p2 = await pgpFirst.plan(envelope, s2, s2.recipients);
    expect(some.asked.sort()).toEqual(['pgp:other@dest.test', 'pgp:pgp@dest.test']);
    expect(p2.groups.map((g) => [g.method, g.rcpts, g.key?.id])).toEqual([['pgp', ['pgp@dest.test'], 'F1'], ['tls', ['other@dest.test'], undefined]]);
    expect(s2.recipients[0]!.decision).toMatchObject({ method: 'pgp', key: { kind: 'pgp', id: 'F1', source: 'import' } });
    // The decision's reasons are made with the keys known: pgp was possible for this one.
    expect(s2.recipients[0]!.decision?.reasons.join()).not.toMatch(/not possible now: pgp/);
    expect(s2.recipients[1]!.decision?.reasons.join()).toMatch(/not possible now: pgp/);
  });

  it('onNoMethod: portal sends a recipient with no possible method to the portal', async () => {
    const none = fakeKeys([]);
    const p = await planner('defaults: { methods: [pgp], tls: verify, onNoMethod: portal }\nrules: []\n', none.lookup);
    const s = stateFor(['x@dest.test']);
    const plan = await p.plan(envelope, s, s.recipients);
    expect(plan.portal).toEqual(['x@dest.test']);
    expect(plan.held).toEqual([]);
  });
});

describe('planner: a message that could not be inspected', () => {
  const plannerWith = async (body: () => unknown) => {
    const file = join(mkdtempSync(join(tmpdir(), 'postern-planner-')), 'policy.yaml');
    writeFileSync(file, 'defaults: { methods: [tls], tls: may }\nonInspectError: bounce\nrules: []\n');
    const policies = new PolicyStore(file, createLogger('silent'));
    await policies.start();
    const q = { bodyInMemory: () => undefined, openBody: async () => body() } as unknown as QueueBackend;
    return new Planner(q, policies, () => policies.current().detectors, createLogger('silent'), { available: (m) => m === 'tls', keys: fakeKeys([]).lookup });
  };

  it('is bounced by onInspectError: bounce when the message is at fault, but deferred when the inspection ran out of time (the load may be the gateway\'s)', async () => {
    let nested = 'Content-Type: text/plain\r\n\r\nx\r\n';
    for (let i = 0; i < 30; i++) nested = `Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n${nested}\r\n--n${i}--\r\n`;
    const bomb = await plannerWith(() => Readable.from([Buffer.from(`Subject: nested\r\n${nested}`)]));
    const s1 = stateFor(['a@dest.test']);
    expect((await bomb.plan(envelope, s1, s1.recipients)).held).toMatchObject([{ result: 'bounce', status: '5.6.0' }]);

    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      // A body that never ends: the parse waits until the inspection deadline.
      const slow = await plannerWith(() => new PassThrough());
      const s2 = stateFor(['a@dest.test']);
      const planned = slow.plan(envelope, s2, s2.recipients);
      await vi.advanceTimersByTimeAsync(11_000);
      const held = (await planned).held;
      expect(held).toMatchObject([{ result: 'defer', status: '4.6.0', category: 'inspect' }]);
      expect(held[0]!.reason).toMatch(/inspection took longer than/);
    } finally {
      vi.useRealTimers();
    }
  });
});
