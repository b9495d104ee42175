import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { expectArchiveMatches } from '../helpers/archive-check.js';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput, type LogLine } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { RawSmtp, sendMail, testMessage } from '../helpers/smtp-client.js';

/** Polls until `pred` holds; fails naming `what` after timeoutMs. */
async function until(pred: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The line a gateway process logs as it starts to drain (src/main.ts: logged in the same
 * tick as new sessions start getting 421). The signal handler's own line comes earlier,
 * and in a cluster the primary's comes before its workers even got the signal.
 */
const isDrainLine = (l: LogLine) => l.event === 'gateway.stopping' && typeof l.timeoutMs === 'number';

describe('graceful shutdown', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-term-'));
  let mx: TestMx | undefined;
  let gw: ChildGateway | undefined;
  let caseNo = 0;
  /** The case's gateway processes (one data directory), for the archive check. */
  let current: { dataDir: string; input: Record<string, unknown>; runs: ChildGateway[] } | undefined;
  const start = async (caseDir: string, config: Record<string, unknown>) => {
    const g = await startChildGateway(caseDir, config);
    current?.runs.push(g);
    return g;
  };
  afterEach(async () => {
    gw?.killAll();
    gw = undefined;
    await mx?.stop();
    mx = undefined;
    const c = current;
    current = undefined;
    if (!c) return;
    await Promise.all(c.runs.map((r) => r.exited));
    // Every message any of its processes took is in the archive, as each did it.
    await expectArchiveMatches({ config: validateConfig(c.input), dataDir: c.dataDir, logs: c.runs.flatMap((r) => r.logs) });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const configFor = (mxPort: number, overrides: Record<string, unknown>) => {
    const caseDir = join(dir, `case-${++caseNo}`);
    mkdirSync(caseDir);
    const config = testConfigInput(join(caseDir, 'data'), {
      log: { level: 'info' },
      delivery: { routes: { '*': { nexthop: `127.0.0.1:${mxPort}`, tls: 'none' } } },
      shutdown: { timeout: '10s' },
      ...overrides,
    });
    current = { dataDir: join(caseDir, 'data'), input: config, runs: [] };
    return { caseDir, config };
  };

  /** Opens a transaction and sends half of its body, so it is in flight at the signal. */
  async function halfSent(port: number): Promise<RawSmtp> {
    const c = await RawSmtp.connect(port);
    await c.command('EHLO client.test');
    await c.command('MAIL FROM:<a@client.test>');
    await c.command('RCPT TO:<b@dest.test>');
    expect(await c.command('DATA')).toMatch(/^354/);
    c.write('Subject: in flight at SIGTERM\r\n\r\nfirst half, ');
    return c;
  }

  /** Starts a gateway, sends it a message, and sends SIGTERM once the MX has seen its DATA. */
  async function signalDuringDelivery(caseDir: string, config: Record<string, unknown>, m: TestMx, subject: string): Promise<ChildGateway> {
    const g = await start(caseDir, config);
    expect((await sendMail(g.port, { from: 'a@client.test', to: ['b@dest.test'], raw: testMessage({ subject }) })).ok).toBe(true);
    await until(() => m.commands.some((c) => c.command === 'DATA'), 'the delivery to reach DATA');
    g.proc.kill('SIGTERM');
    return g;
  }

  it.each([
    ['one process', 1],
    ['two worker processes', 2],
  ])('%s: on SIGTERM new sessions get 421 4.3.2, the transaction in flight finishes, exit 0, nothing lost', async (_name, workers) => {
    mx = await new TestMx().start();
    const { caseDir, config } = configFor(mx.port, { workers });
    gw = await start(caseDir, config);
    await until(() => gw!.logs.some((l) => l.event === 'gateway.ready' && (workers === 1 || l.workers === workers)), 'every worker ready');
    const inFlight = await halfSent(gw.port);

    gw.proc.kill('SIGTERM');
    const victim = gw;
    // Every process must have begun to drain: in a cluster the kernel may hand the next
    // connection to any worker, and one that has not yet got the signal would greet 220.
    await until(() => new Set(victim.logs.filter(isDrainLine).map((l) => l.shard ?? 0)).size === workers, `${workers} drain line(s)`);
    for (let i = 0; i < 4; i++) {
      const late = await RawSmtp.connect(gw.port);
      expect(late.greeting).toMatch(/^421 4\.3\.2 /);
      late.close();
    }

    inFlight.write('second half.\r\n.\r\n');
    expect(await inFlight.read()).toMatch(/^250 2\.0\.0 Ok: queued as /);
    inFlight.close();
    const { code } = await gw.exited;
    expect(code).toBe(0);
    expect(gw.logs.some((l) => l.event === 'gateway.stopped')).toBe(true);

    // Whatever was not delivered before the exit is delivered after the restart.
    gw = await start(caseDir, config);
    await mx.waitFor(1, 20_000);
    expect(mx.messages[0]!.raw.toString()).toContain('first half, second half.');
  });

  it('an outbound delivery in flight at SIGTERM finishes within the deadline, then the process exits 0', async () => {
    // The MX takes 1.5 s to answer the end of DATA; the deadline is 10 s.
    mx = await new TestMx({ dataDelay: () => 1500 }).start();
    const { caseDir, config } = configFor(mx.port, { workers: 1 });
    gw = await signalDuringDelivery(caseDir, config, mx, 'slow MX');
    const { code } = await gw.exited;
    expect(code).toBe(0);
    expect(mx.messages).toHaveLength(1);
    const sent = gw.logs.findIndex((l) => l.event === 'delivery.sent');
    const stopped = gw.logs.findIndex((l) => l.event === 'gateway.stopped');
    expect(sent).toBeGreaterThan(-1);
    expect(sent).toBeLessThan(stopped);
    expect(gw.logs[stopped]).toMatchObject({ clean: true });

    // Delivered means settled: a restart sends nothing again.
    gw = await start(caseDir, config);
    await new Promise((r) => setTimeout(r, 1500));
    expect(mx.messages).toHaveLength(1);
  });

  it('an outbound delivery still in flight at the deadline stays queued, the process exits 0, and the restart delivers it', async () => {
    // The first answer to DATA would take 60 s; the deadline is 1 s.
    let slow = true;
    mx = await new TestMx({ dataDelay: () => (slow ? 60_000 : 0) }).start();
    const { caseDir, config } = configFor(mx.port, { workers: 1, shutdown: { timeout: '1s' } });
    gw = await signalDuringDelivery(caseDir, config, mx, 'very slow MX');
    const { code } = await gw.exited;
    expect(code).toBe(0);
    expect(gw.logs.find((l) => l.event === 'gateway.stopped')).toMatchObject({ clean: false });
    expect(gw.logs.some((l) => l.event === 'delivery.sent')).toBe(false);
    expect(mx.messages).toHaveLength(0);

    slow = false;
    gw = await start(caseDir, config);
    await mx.waitFor(1, 20_000);
    expect(mx.messages[0]!.raw.toString()).toContain('Subject: very slow MX');
    await new Promise((r) => setTimeout(r, 1000));
    expect(mx.messages).toHaveLength(1);
  });
});
