import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../src/queue/redis/connect.js';
import { redisVersionOf, versionBelow } from '../../src/queue/redis/version.js';
import { DEV_REDIS_URL, devRedisAvailable, redisSection, testPrefix } from './redis-harness.js';

const redisUp = await devRedisAvailable();

describe('the Redis version', () => {
  it('is read from INFO server', () => {
    const info = '# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n';
    expect(redisVersionOf(info)).toBe('7.0.15');
    expect(redisVersionOf('# Server\r\nredis_version:6.2.0-rc1\r\n')).toBe('6.2.0-rc1');
    // Not a field that merely ends in redis_version.
    expect(redisVersionOf('# Server\r\nvalkey_redis_version:9.9.9\r\n')).toBeUndefined();
    expect(redisVersionOf('# Server\r\nredis_mode:standalone\r\n')).toBeUndefined();
  });

  it('6.2 is the minimum, compared part by part as numbers', () => {
    for (const old of ['6.0.16', '6.1.240', '5.0.7', '4.0.14', '2.8.24', '6']) expect(versionBelow(old), old).toBe(true);
    for (const ok of ['6.2.0', '6.2', '6.2.14', '6.10.0', '7.0.15', '7.2.4', '10.0.0', '255.255.255', '6.2.0-rc1']) expect(versionBelow(ok), ok).toBe(false);
    // Not a version at all: not refused here (checkRedisVersion lets such a server run).
    expect(versionBelow('unknown')).toBe(false);
  });
});

/**
 * A server that speaks enough RESP for ioredis to connect (CLIENT SETNAME, the ready
 * check's INFO) and reports an old redis_version: the way to meet Redis 6.0 where only
 * a newer redis-server is installed.
 */
async function oldRedis(version: string): Promise<{ url: string; commands: string[][]; server: Server }> {
  const commands: string[][] = [];
  const server = createServer((socket: Socket) => {
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const parsed = parseCommand(buffer);
        if (!parsed) return;
        buffer = buffer.subarray(parsed.length);
        commands.push(parsed.args);
        const name = parsed.args[0]?.toUpperCase();
        if (name === 'INFO') {
          const text = `# Server\r\nredis_version:${version}\r\nredis_mode:standalone\r\n\r\n# Persistence\r\nloading:0\r\n`;
          socket.write(`$${Buffer.byteLength(text)}\r\n${text}\r\n`);
        } else socket.write('+OK\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `redis://:s3cret@127.0.0.1:${port}`, commands, server };
}

/** One RESP array of bulk strings from the front of the buffer, or undefined until it is whole. */
function parseCommand(buf: Buffer): { args: string[]; length: number } | undefined {
  let pos = 0;
  const line = () => {
    const end = buf.indexOf('\r\n', pos);
    if (end < 0) return undefined;
    const text = buf.subarray(pos, end).toString();
    pos = end + 2;
    return text;
  };
  const head = line();
  if (head === undefined || !head.startsWith('*')) return undefined;
  const args: string[] = [];
  for (let i = 0; i < Number(head.slice(1)); i++) {
    const size = line();
    if (size === undefined || pos + Number(size.slice(1)) + 2 > buf.length) return undefined;
    args.push(buf.subarray(pos, pos + Number(size.slice(1))).toString());
    pos += Number(size.slice(1)) + 2;
  }
  return { args, length: pos };
}

describe('connecting to Redis', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  it('refuses a Redis older than 6.2, naming redis.url (password hidden) and the version', async () => {
    const old = await oldRedis('6.0.16');
    servers.push(old.server);
    const err = await connectRedis(redisSection(old.url, testPrefix())).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^redis\.url \(redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\) is Redis 6\.0\.16; Postern needs Redis 6\.2 or later/);
    expect(err?.message).not.toContain('s3cret');
    // It asked the server itself, after the password was accepted.
    expect(old.commands.map((c) => c.join(' '))).toContain('info server');
  });

  it('accepts the same server reporting 6.2.0', async () => {
    const ok = await oldRedis('6.2.0');
    servers.push(ok.server);
    const redis = await connectRedis(redisSection(ok.url, testPrefix()));
    redis.disconnect();
  });

  // Skipped only on a developer machine without Redis on 127.0.0.1:6379; under CI=true devRedisAvailable throws (.ci/run starts one).
  it.skipIf(!redisUp)('accepts the development Redis', async () => {
    const redis = await connectRedis(redisSection(DEV_REDIS_URL, testPrefix()));
    expect(versionBelow(redisVersionOf(await redis.info('server')) ?? '')).toBe(false);
    redis.disconnect();
  });
});
