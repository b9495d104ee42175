import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { openRedisQueue } from '../../src/queue/redis/connect.js';
import { findProgram } from '../helpers/programs.js';
import { commitBody, readBody, testPrefix } from './redis-harness.js';
import { freePort } from './redis-server.js';

const redisServer = findProgram('redis-server');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ComposeService {
  image?: string;
  build?: unknown;
  pull_policy?: string;
  command?: string[];
  environment?: Record<string, string>;
}

/** Compose's own interpolation of "${NAME:-default}" (no such variable set here) and "$$". */
const composeValue = (text: string) => text.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1').replace(/\$\$/g, '$');

// Skipped only on a developer machine without a redis-server binary; under CI=true findProgram throws.
describe.skipIf(!redisServer)('the docker compose demo: its Redis as Postern wants it', () => {
  // merge: the gateways share their settings through a YAML anchor (<<: *postern).
  const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
  const dir = mkdtempSync(join(tmpdir(), 'postern-compose-redis-'));
  const stops: (() => void)[] = [];
  afterAll(() => {
    for (const stop of stops) stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pins its images and builds the gateway image once', () => {
    const services = Object.entries(compose.services);
    const builders = services.filter(([, s]) => s.build !== undefined).map(([name]) => name);
    expect(builders).toEqual(['postern-a']);
    for (const [name, s] of services) {
      if (s.build !== undefined || s.pull_policy === 'never') continue;
      expect(s.image, `${name} runs a pinned image`).toMatch(/^[\w./-]+:v?\d+\.\d+\.\d+$/);
    }
    expect(readFileSync('Dockerfile', 'utf8')).toMatch(/^ARG NODE_IMAGE=node:\d+\.\d+\.\d+-/m);
  });

  it('the redis service, started by its own command line, passes the start-up check of config/docker.yaml (durability: refuse) with the password', async () => {
    const redis = compose.services.redis!;
    const env = Object.fromEntries(Object.entries(redis.environment ?? {}).map(([k, v]) => [k, composeValue(v)]));
    expect(env.REDIS_PASSWORD).toBeTruthy();
    const [shell, flag, script] = (redis.command ?? []).map(composeValue);
    expect([shell, flag]).toEqual(['sh', '-c']);
    // Redis's default policy is noeviction too; the demo says so, so nobody changes it unaware.
    expect(script).toMatch(/--maxmemory-policy noeviction\b/);
    // The same shell line, on a loopback port and a directory of this test.
    const port = await freePort();
    const line = `${script!.replace(/^exec redis-server/, `exec ${redisServer}`)} --port ${port} --bind 127.0.0.1 --dir ${dir}`;
    const child = spawn('sh', ['-c', line], { env: { ...process.env, ...env }, stdio: 'ignore' });
    stops.push(() => child.kill('SIGKILL'));

    // config/docker.yaml as the gateways get it (compose's environment), pointed at this Redis.
    const gateway = compose.services['postern-a']!;
    const gatewayEnv = Object.fromEntries(Object.entries(gateway.environment ?? {}).map(([k, v]) => [k, composeValue(v)]));
    expect(gatewayEnv.POSTERN_REDIS_PASSWORD).toBe(env.REDIS_PASSWORD);
    const config = parseConfigText(readFileSync('config/docker.yaml', 'utf8').replace('@redis:6379', `@127.0.0.1:${port}`), 'config/docker.yaml', gatewayEnv);
    expect(config.redis.durability).toBe('refuse');
    const section = { ...config.redis, keyPrefix: testPrefix() };

    let queue: Awaited<ReturnType<typeof openRedisQueue>> | undefined;
    for (let i = 0; i < 100 && !queue; i++) {
      queue = await openRedisQueue({ redis: section }, pino({ level: 'silent' })).catch(async (err: Error) => {
        // Not up yet; anything else (refused by the durability check, a wrong password) is the answer.
        if (!/ECONNREFUSED/.test(err.message)) throw err;
        await sleep(100);
        return undefined;
      });
    }
    expect(queue).toBeDefined();
    // The password is required, not merely accepted.
    const anonymous = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    anonymous.on('error', () => undefined);
    await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
    anonymous.disconnect();
    try {
      await queue!.open();
      const env = await commitBody(queue!, 'through the compose Redis\r\n');
      expect((await readBody(queue!, env.id)).toString()).toBe('through the compose Redis\r\n');
    } finally {
      await queue!.close();
    }
  });
});
