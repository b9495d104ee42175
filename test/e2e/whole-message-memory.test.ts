import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';

/**
 * delivery.wholeMessageMemory bounds what delivery attempts hold of whole messages at
 * once. The portal stores a message whole; with the default concurrency (200 attempts),
 * unbounded, a burst of large messages to the portal would hold them all at once.
 */
describe('delivery.wholeMessageMemory', () => {
  const s = scenario();

  it('large messages to the portal wait their turn instead of all being held whole at once, and every one is stored', async () => {
    const mx = await s.mx();
    const dir = mkdtempSync(join(tmpdir(), 'postern-memory-policy-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, 'defaults: { methods: [portal], onNoMethod: defer }\nrules: []\n');
    // 400 KB messages (past the spool's 256 KB in-memory records, so each is read from
    // disk) against a 600 KB budget: one at a time.
    const gw = await s.gateway({ policy: { file: policy }, delivery: { mxPort: mx.port, routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } }, wholeMessageMemory: '600KB' } });
    const body = `${'Quarterly figures, nothing confidential. '.repeat(10_000)}`;
    const rcpts = ['a', 'b', 'c', 'd', 'e', 'f'].map((l) => `${l}@dest.test`);
    const results = await Promise.all(rcpts.map((to) => sendMail(gw.port, { from: 'sender@client.test', to: [to], raw: testMessage({ to, subject: 'Figures', body }) })));
    expect(results.every((r) => r.ok)).toBe(true);
    for (const to of rcpts) await gw.waitForLog((l) => l.event === 'delivery.sent' && l.to === to && l.method === 'portal');
    const waits = gw.events('delivery.memory-wait');
    expect(waits.length).toBeGreaterThan(0);
    for (const w of waits) {
      expect(w).toMatchObject({ limit: 600 * 1024 });
      // It waited because what was held and its own size would not fit together.
      expect(Number(w.heldBytes) + Number(w.size)).toBeGreaterThan(600 * 1024);
    }
    expect(gw.events('portal.notice')).toHaveLength(rcpts.length);
  });
});
