import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { sendNumbered, testIdsOf } from '../helpers/load-sender.js';

const TOTAL = 2000;
const CONNECTIONS = 20;
const KILL_AFTER = 700;

describe('crash recovery', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-crash-'));
  let mx: TestMx;
  let gw: ChildGateway | undefined;
  afterAll(async () => {
    gw?.killAll();
    await mx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`kill -9 during a ${TOTAL}-message load loses no acknowledged message`, async () => {
    mx = await new TestMx().start();
    const config = testConfigInput(join(dir, 'data'), {
      log: { level: 'info' }, // the child helper waits for the gateway.ready line
      delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } }, retry: { initialDelay: '200ms', maxDelay: '1s' } },
    });
    gw = await startChildGateway(dir, config);
    const tally = { acked: new Set<string>(), refused: [] as string[] };
    const acked = tally.acked;
    let issued = 0;
    let killed = false;
    const victim = gw;
    const next = () => (killed || issued >= TOTAL ? undefined : issued++);
    const onAck = () => {
      if (!killed && acked.size >= KILL_AFTER) {
        killed = true;
        victim.killAll();
      }
    };
    await Promise.all(Array.from({ length: CONNECTIONS }, () => sendNumbered(victim.port, next, tally, onAck, 'crash')));
    const { signal } = await victim.exited;
    expect(signal).toBe('SIGKILL');
    expect(acked.size).toBeGreaterThanOrEqual(KILL_AFTER);

    // Restart on the same spool: every acknowledged message must come out.
    gw = await startChildGateway(dir, config);
    const deadline = Date.now() + 40_000;
    const seen = () => new Set(testIdsOf(mx.messages));
    while (Date.now() < deadline && [...acked].some((id) => !seen().has(id))) await new Promise((r) => setTimeout(r, 200));
    const delivered = seen();
    const lost = [...acked].filter((id) => !delivered.has(id));
    if (lost.length) console.info("lost", lost.length, "of", acked.size, "mx", mx.messages.length, JSON.stringify(gw.logs.slice(-5)));
    expect(lost).toEqual([]);
    const counts = new Map<string, number>();
    for (const id of testIdsOf(mx.messages)) counts.set(id, (counts.get(id) ?? 0) + 1);
    const duplicates = [...counts.values()].filter((c) => c > 1).length;
    // At-least-once: only deliveries in flight at the kill may repeat.
    expect(duplicates).toBeLessThanOrEqual(200);
    console.info(`crash test: ${acked.size} acknowledged, ${delivered.size} distinct delivered, ${duplicates} duplicated`);
  });
});
