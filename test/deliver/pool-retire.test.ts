import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { ConnectionPool, type PooledConnection } from '../../src/deliver/pool.js';
import { sendTransaction } from '../../src/deliver/transaction.js';
import { createLogger } from '../../src/events/logger.js';
import { TestMx } from '../helpers/mx-server.js';

/**
 * A pooled connection is closed once, and says so once: the end of a connection Postern
 * closed itself (QUIT at shutdown, after the idle timeout) must not log a second
 * "connection closed" as if the remote had closed it. Real pool, real MX on 127.0.0.1.
 */
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function pooledAfterOneMessage(idleTimeout: string): Promise<{ pool: ConnectionPool; pc: PooledConnection; lines: Record<string, unknown>[] }> {
  const mx = await new TestMx().start();
  cleanup.push(() => mx.stop());
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const config = validateConfig({ hostname: 'gw.test', delivery: { pool: { idleTimeout } } });
  const pool = new ConnectionPool(config, log);
  cleanup.push(() => pool.closeAll());
  const pc = await pool.acquire({ address: '127.0.0.1', port: mx.port, name: 'mx.test', tls: 'none' });
  const result = await sendTransaction(pc, { from: 'a@gw.test', to: ['b@dest.test'], size: 30, eightBit: false, body: Buffer.from('Subject: x\r\n\r\nhello\r\n') });
  expect(result.replies).toMatchObject([{ ok: true }]);
  pool.release(pc, result.reusable);
  return { pool, pc, lines };
}

/** Resolves once the connection has ended (after the pool's own 'end' listener ran). */
const ended = (pc: PooledConnection): Promise<void> => new Promise((resolve) => pc.conn.once('end', () => setImmediate(resolve)));

const closedLines = (lines: Record<string, unknown>[]) => lines.filter((l) => l.event === 'delivery.connection').map((l) => l.reason);

describe('ConnectionPool: one "connection closed" line per connection', () => {
  it('an idle connection closed at shutdown: one line, reason shutdown', async () => {
    const { pool, pc, lines } = await pooledAfterOneMessage('10m');
    const end = ended(pc);
    await pool.closeAll();
    await end;
    expect(closedLines(lines)).toEqual(['shutdown']);
  });

  it('an idle connection closed after the idle timeout: one line, reason idle', async () => {
    const { pc, lines } = await pooledAfterOneMessage('50ms');
    await ended(pc);
    expect(closedLines(lines)).toEqual(['idle']);
  });
});
