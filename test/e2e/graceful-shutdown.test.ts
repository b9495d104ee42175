import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { RawSmtp } from '../helpers/smtp-client.js';

describe('graceful shutdown', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-term-'));
  let mx: TestMx;
  let gw: ChildGateway | undefined;
  afterAll(async () => {
    gw?.killAll();
    await mx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('on SIGTERM refuses new sessions with 421 4.3.2, finishes the transaction in flight, exits 0, and loses nothing', async () => {
    mx = await new TestMx().start();
    const config = testConfigInput(join(dir, 'data'), {
      log: { level: 'info' },
      delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } },
      shutdown: { timeout: '10s' },
    });
    gw = await startChildGateway(dir, config);
    const inFlight = await RawSmtp.connect(gw.port);
    await inFlight.command('EHLO client.test');
    await inFlight.command('MAIL FROM:<a@client.test>');
    await inFlight.command('RCPT TO:<b@dest.test>');
    expect(await inFlight.command('DATA')).toMatch(/^354/);
    inFlight.write('Subject: in flight at SIGTERM\r\n\r\nfirst half, ');

    gw.proc.kill('SIGTERM');
    const victim = gw;
    await new Promise<void>((resolve) => {
      const check = () => (victim.logs.some((l) => l.event === 'gateway.stopping') ? resolve() : setTimeout(check, 20));
      check();
    });
    const late = await RawSmtp.connect(gw.port);
    expect(late.greeting).toMatch(/^421 4\.3\.2 /);
    late.close();

    inFlight.write('second half.\r\n.\r\n');
    expect(await inFlight.read()).toMatch(/^250 2\.0\.0 Ok: queued as /);
    inFlight.close();
    const { code } = await gw.exited;
    expect(code).toBe(0);
    expect(gw.logs.some((l) => l.event === 'gateway.stopped')).toBe(true);

    // Whatever was not delivered before the exit is delivered after the restart.
    gw = await startChildGateway(dir, config);
    await mx.waitFor(1, 20_000);
    expect(mx.messages[0]!.raw.toString()).toContain('first half, second half.');
  });
});
