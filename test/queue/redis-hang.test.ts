import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/queue/redis/connect.js';
import { RedisQueue } from '../../src/queue/redis/queue.js';
import { APPEND_BATCH } from '../../src/queue/redis/writer.js';
import { findProgram } from '../helpers/programs.js';
import { commitBody, envelope, keysUnder, openTestQueue, redisSection, testPrefix } from './redis-harness.js';
import { freePort, startRedisServer, type RedisServer } from './redis-server.js';

const redisServer = findProgram('redis-server');

// Skipped only on a developer machine without a redis-server binary; under CI=true findProgram throws.
describe.skipIf(!redisServer)('Redis queue and a Redis that hangs (a redis-server of our own, SIGSTOP / SIGCONT)', () => {
  const dirs: string[] = [];
  const servers: RedisServer[] = [];
  const queues: RedisQueue[] = [];
  afterAll(async () => {
    for (const q of queues) await q.close().catch(() => undefined);
    for (const s of servers) {
      s.process.kill('SIGCONT');
      await s.kill('SIGKILL');
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('a commit that Redis runs only after its client gave up is refused, even when the undo never reaches Redis', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-redis-hang-'));
    dirs.push(dir);
    const server = await startRedisServer(redisServer as string, await freePort(), ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '']);
    servers.push(server);
    const prefix = testPrefix();
    const q = new RedisQueue(await connectRedis({ ...redisSection(server.url, prefix), commandTimeout: 500 }), { keyPrefix: prefix, ownsClient: true });
    queues.push(q);
    await q.open();
    // One commit first, so Redis has the script cached (EVALSHA) as it would in service.
    const first = await commitBody(q, 'first\r\n');
    const w = await q.receive(envelope());
    // Exactly one APPEND batch: written (and answered) now, so commit() sends only the script.
    await w.write(Buffer.alloc(APPEND_BATCH, 0x61));

    server.process.kill('SIGSTOP');
    await expect(w.commit()).rejects.toThrow(/timed out/);
    // The instance is gone before it can undo (it crashed, or its connection broke): the
    // commit still sits in Redis's input buffer, and Redis reads it when it runs again.
    q.redis.disconnect();
    server.process.kill('SIGCONT');

    const b = await openTestQueue(server.url, prefix);
    queues.push(b);
    await new Promise((r) => setTimeout(r, 300));
    // The SMTP client was told 451 and will send again: a message made now would be a
    // second copy nobody acknowledged.
    expect(await b.get(w.id)).toBeUndefined();
    expect((await b.list()).map((m) => m.envelope.id)).toEqual([first.id]);
    expect((await keysUnder(server.url, prefix)).filter((k) => /:(msg|body):/.test(k) && !k.endsWith(first.id))).toEqual([]);
  });
});
