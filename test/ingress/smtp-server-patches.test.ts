import { connect } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { applyPatches } from '../../src/ingress/smtp-server-patches.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RawSmtp } from '../helpers/smtp-client.js';

/** Resolves with the first bytes the server sends, or 'none' after `spins` event-loop turns. */
async function firstBytes(port: number, spins = 2000): Promise<string> {
  const socket = connect({ port, host: '127.0.0.1' });
  let got = '';
  socket.on('data', (d) => (got += d.toString()));
  socket.on('error', () => undefined);
  for (let i = 0; i < spins && !got; i++) await new Promise((r) => setImmediate(r));
  socket.destroy();
  return got || 'none';
}

describe('smtp-server patches', () => {
  let gw: TestGateway | undefined;
  afterEach(async () => {
    vi.useRealTimers();
    await gw?.stop();
    gw = undefined;
  });

  it('the stock library delays its greeting on a timer (what the patch removes)', async () => {
    applyPatches();
    const stock = new SMTPServer({ logger: false, disableReverseLookup: true, authOptional: true });
    await new Promise<void>((r) => stock.listen(0, '127.0.0.1', () => r()));
    const port = (stock.server.address() as { port: number }).port;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    // With setTimeout frozen, a timer-based greeting never comes.
    expect(await firstBytes(port)).toBe('none');
    vi.useRealTimers();
    await new Promise<void>((r) => stock.close(() => r()));
  });

  it('Postern greets without any timer: a library upgrade that brings the wait back fails here', async () => {
    gw = await startTestGateway({ delivery: { routes: { '*': '127.0.0.1:9' } } });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    expect(await firstBytes(gw.port)).toMatch(/^220 postern\.test ESMTP/);
  });

  it('keeps the enhanced status code Postern chose instead of the one derived from the number', async () => {
    gw = await startTestGateway({ delivery: { routes: { '*': '127.0.0.1:9' } } });
    const c = await RawSmtp.connect(gw.port);
    await c.command('EHLO client.test');
    await c.command('MAIL FROM:<a@client.test>');
    // 550 alone would map to 5.1.1 in smtp-server; a relay denial is 5.7.1.
    const r = await c.command('RCPT TO:<a%b@dest.test>');
    expect(r).toMatch(/^550 5\.7\.1 Relay access denied/);
    expect(r).not.toMatch(/5\.1\.1/);
    // Library-generated replies still get an enhanced code.
    expect(await c.command('BOGUS')).toMatch(/^500 5\.5\.2 /);
    c.close();
  });

  it('a second whole transaction sent without waiting for 354 is queued, and the session still answers what follows', async () => {
    // SMTPStream.continue() used to clear the callback the second DATA had just set: both
    // messages were queued, then nothing was answered until the command timeout.
    gw = await startTestGateway({ delivery: { routes: { '*': '127.0.0.1:9' } } });
    const c = await RawSmtp.connect(gw.port);
    const transaction = (n: number) => `MAIL FROM:<a@client.test>\r\nRCPT TO:<b${n}@dest.test>\r\nDATA\r\nSubject: ${n}\r\n\r\nbody ${n}\r\n.\r\n`;
    c.write(`EHLO client.test\r\n${transaction(1)}${transaction(2)}NOOP\r\nQUIT\r\n`);
    const replies: string[] = [];
    for (let i = 0; i < 11; i++) replies.push((await c.read()).split('\r\n').pop()!.slice(0, 3));
    c.close();
    expect(replies).toEqual(['250', '250', '250', '354', '250', '250', '250', '354', '250', '250', '221']);
  });
});

