import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/queue/redis/connect.js';
import { redactedUrl } from '../../src/queue/redis/redacted-url.js';
import { findProgram } from '../helpers/programs.js';
import { redisSection, testPrefix } from './redis-harness.js';
import { freePort, startRedisServer, type RedisServer } from './redis-server.js';

const redisServer = findProgram('redis-server');

describe('a Redis password given as a query parameter (?password=, which ioredis authenticates with)', () => {
  it('is masked like the userinfo password', () => {
    expect(redactedUrl('redis://127.0.0.1:6379/0?password=Hunter2-secret&db=1')).toBe('redis://127.0.0.1:6379/0?password=***&db=1');
    expect(redactedUrl('redis://u:Pw1@h:6379/?pass=a&authToken=b&family=6')).toBe('redis://u:***@h:6379/?pass=***&authToken=***&family=6');
    expect(redactedUrl('redis://h:6379/2')).toBe('redis://h:6379/2');
  });

  // Skipped only on a developer machine without a redis-server binary; under CI=true findProgram throws.
  describe.skipIf(!redisServer)('with a redis-server of our own that requires a password', () => {
    let server: RedisServer | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'postern-redis-url-'));
    afterAll(async () => {
      await server?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    it('never prints it: neither in the start-up error nor in the queue.redis-error log line', async () => {
      const port = await freePort();
      server = await startRedisServer(redisServer as string, port, ['--dir', dir, '--save', ''], { password: 'right-one' });
      const lines: string[] = [];
      const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
      const wrong = 'QUERYPASSWORD-wrong-7f3a';
      const err = await connectRedis(redisSection(`redis://127.0.0.1:${port}/0?password=${wrong}`, testPrefix()), logger).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect(String(err)).toMatch(/WRONGPASS/);
      expect(String(err)).toContain(`cannot reach Redis at redis://127.0.0.1:${port}/0?password=***`);
      expect(lines.some((l) => l.includes('queue.redis-error'))).toBe(true);
      expect(String(err) + lines.join('')).not.toContain(wrong);
    });
  });
});
