import { createReadStream, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { ConnectionPool } from '../../src/deliver/pool.js';
import { sendTransaction } from '../../src/deliver/transaction.js';
import { TestMx } from '../helpers/mx-server.js';

/** File descriptors of this process open on `path` (what a leaked spool stream keeps). */
function openOn(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false; // the fd of readdirSync itself, closed meanwhile
    }
  }).length;
}

async function until(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/**
 * The body of a delivery is a read stream on the spool. Whatever the remote answers, the
 * transaction must leave it closed: an open one keeps a descriptor, a 64 KB buffer and a
 * deleted segment's disk space for the life of the process, once per attempt.
 */
describe('sendTransaction: the body stream is closed whatever the outcome (real MX, real file)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-transaction-'));
  const size = 200 * 1024;
  const mxs: TestMx[] = [];
  let pool: ConnectionPool;

  beforeAll(() => {
    const config = validateConfig({ hostname: 'gw.test', delivery: { timeouts: { connect: 5000, greeting: 5000, socket: 5000 } } });
    pool = new ConnectionPool(config, pino({ level: 'silent' }));
  });
  afterAll(async () => {
    await pool.closeAll();
    for (const mx of mxs) await mx.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sends a body read from a file of its own (one test's leak cannot show in another's count). */
  async function send(mx: TestMx, to: string) {
    await mx.start();
    mxs.push(mx);
    const file = join(dir, `body-${mxs.length}.eml`);
    writeFileSync(file, Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(size, 'a'), Buffer.from('\r\n')]));
    const pc = await pool.acquire({ address: '127.0.0.1', port: mx.port, name: 'mx.test', tls: 'none' });
    const body = createReadStream(file);
    await new Promise((r) => body.once('open', r));
    expect(openOn(file)).toBe(1);
    const result = await sendTransaction(pc, { from: 'a@gw.test', to: [to], size: statSync(file).size, eightBit: false, body });
    pool.release(pc, result.reusable);
    await until(() => openOn(file) === 0, 1000);
    return { result, body, file };
  }

  it('the remote announces a SIZE below the message: bounced with 5.3.4 without a word sent, and the stream is closed', async () => {
    const mx = new TestMx({ size: 1000 });
    const { result, body, file } = await send(mx, 'x@dest.test');
    expect(result.replies).toEqual([{ rcpt: 'x@dest.test', ok: false, local: 'size', response: '552 5.3.4 Message exceeds the size limit the remote server announced' }]);
    expect(mx.commands).toEqual([]);
    expect(openOn(file), 'file descriptors still open on the body file').toBe(0);
    expect(body.destroyed).toBe(true);
  });

  it('the recipient is refused: the stream is closed', async () => {
    const mx = new TestMx({ rcptReply: () => [550, '5.1.1 no such user'] });
    const { result, file } = await send(mx, 'nobody@dest.test');
    expect(result.replies[0]).toMatchObject({ ok: false, response: expect.stringMatching(/^550/) });
    expect(openOn(file)).toBe(0);
  });

  it('the message is accepted: the stream is closed', async () => {
    const mx = new TestMx();
    const { result, file } = await send(mx, 'x@dest.test');
    expect(result.replies[0]).toMatchObject({ ok: true });
    expect(mx.messages[0]?.raw.length).toBeGreaterThan(size);
    expect(openOn(file)).toBe(0);
  });
});
