import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'postern-redis-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEYS = 'portal: { masterKeys: [{ id: k1, key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= }] }\narchive: { masterKeys: [{ id: k1, key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= }] }\n';
const redisConfig = (redis: string) => `hostname: gw.example.org\nqueue: { backend: redis }\nredis: ${redis}\n${KEYS}`;

/** The problem lines of a config that must be refused. */
function problemsOf(text: string): string[] {
  try {
    parseConfigText(text, 'test.yaml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('the config was accepted');
}

describe('the redis section is checked before anything connects', () => {
  it('a lease time under 1s, or not longer than the command timeout, names redis.leaseTime', () => {
    expect(problemsOf(redisConfig('{ leaseTime: 500ms, commandTimeout: 200ms }'))).toEqual([expect.stringMatching(/^redis\.leaseTime: must be at least 1s/)]);
    expect(problemsOf(redisConfig('{ leaseTime: 5s }'))).toEqual([expect.stringMatching(/^redis\.leaseTime: must be longer than redis\.commandTimeout/)]);
    expect(() => parseConfigText(redisConfig('{ leaseTime: 6s }'), 'test.yaml', {})).not.toThrow();
  });

  it('redis.tls.ca needs rediss:// and a file it can read', () => {
    expect(problemsOf(redisConfig('{ url: "redis://cache.internal:6379", tls: { ca: /etc/hosts } }'))).toEqual([expect.stringMatching(/^redis\.tls\.ca: is set but redis\.url does not start with rediss:\/\//)]);
    expect(problemsOf(redisConfig('{ url: "rediss://cache.internal:6380", tls: { ca: /nonexistent/redis-ca.pem } }'))).toEqual([
      'redis.tls.ca: not a PEM block and not a readable file: cannot read /nonexistent/redis-ca.pem (ENOENT); fix the path or the file\'s permissions',
    ]);
  });

  it('check-config prints the queue backend and the Redis URL without its password', async () => {
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
    const file = join(dir, 'redis.yaml');
    writeFileSync(file, redisConfig(`{ url: "rediss://:\${env:TEST_REDIS_PASSWORD}@cache.internal:6380/2", tls: { ca: ${ca} }, durability: refuse }`));
    const r = await runCli(['check-config', '--config', file], { TEST_REDIS_PASSWORD: 's3cret-Redis-pw' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`queue: redis at rediss://:***@cache.internal:6380/2 (key prefix postern:, TLS CA ${ca}), durability refuse, leaseTime 60000 ms, commandTimeout 5000 ms`);
    expect(r.stdout + r.stderr).not.toContain('s3cret-Redis-pw');

    const fs = join(dir, 'fs.yaml');
    writeFileSync(fs, 'hostname: gw.example.org\ndataDir: /var/lib/postern\n');
    expect((await runCli(['check-config', '--config', fs])).stdout).toContain('queue: fs (under /var/lib/postern/spool)');

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, redisConfig('{ leaseTime: 2s, tls: { ca: /nonexistent/ca.pem } }'));
    const refused = await runCli(['check-config', '--config', bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/redis\.leaseTime: must be longer than redis\.commandTimeout/);
  });
});
