import { existsSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { killGroup, startProcess } from './proc.js';

export const REDIS_SERVER = '/usr/bin/redis-server';

export interface RedisServer {
  url: string;
  pgid: number;
  stop(): Promise<void>;
}

export const redisAvailable = () => existsSync(REDIS_SERVER);

/**
 * The bench's own redis-server on loopback, as durable as the fsync'd spool: every
 * write is in the append-only file, fsync'd, before Redis answers (appendfsync
 * always); no RDB snapshots; its files under `dir`.
 */
export async function startRedis(dir: string, port: number): Promise<RedisServer> {
  mkdirSync(dir, { recursive: true });
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--daemonize', 'no', '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--dir', dir];
  const proc = startProcess(REDIS_SERVER, args);
  let output = '';
  proc.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-2000)));
  proc.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-2000)));
  const deadline = Date.now() + 10_000;
  while (!(await pong(port))) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}:\n${output}`);
    if (Date.now() > deadline) {
      killGroup(proc, 'SIGKILL');
      throw new Error(`redis-server on 127.0.0.1:${port} did not answer PING:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    pgid: proc.pid as number,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      killGroup(proc);
      const t = setTimeout(() => killGroup(proc, 'SIGKILL'), 10_000);
      await new Promise((r) => proc.once('exit', r));
      clearTimeout(t);
    },
  };
}

function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d: Buffer) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    s.once('error', () => resolve(false));
  });
}
