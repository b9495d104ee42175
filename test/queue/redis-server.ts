import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A free loopback port (the listener is closed again before redis-server binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  url: string;
  process: ChildProcess;
  /** Sends the signal and waits until the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface ServerAccess {
  /** Serve TLS only, with this certificate and key (PEM); `ca` (PEM) is what clients trust. */
  tls?: { cert: string; key: string; ca: string; dir: string } | undefined;
  password?: string | undefined;
}

/**
 * Starts a redis-server of the test's own on 127.0.0.1, with `args` (persistence
 * settings, its data directory), and waits until it answers PING.
 */
export async function startRedisServer(binary: string, port: number, args: string[], access: ServerAccess = {}): Promise<RedisServer> {
  const listen = access.tls ? ['--port', '0', '--tls-port', String(port), ...tlsArgs(access.tls)] : ['--port', String(port)];
  const auth = access.password ? ['--requirepass', access.password] : [];
  const child = spawn(binary, [...listen, ...auth, '--bind', '127.0.0.1', '--daemonize', 'no', '--protected-mode', 'yes', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `${access.tls ? 'rediss' : 'redis'}://${access.password ? `:${encodeURIComponent(access.password)}@` : ''}127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}:\n${output}`);
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...(access.tls ? { tls: { ca: access.tls.ca } } : {}) });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      // LOADING replies an error while the AOF is replayed; wait until it is done.
      if ((await probe.ping()) === 'PONG') break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer: ${(err as Error).message}\n${output}`);
    } finally {
      probe.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    process: child,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Writes the PEM files redis-server reads; clients need not present a certificate. */
function tlsArgs(tls: NonNullable<ServerAccess['tls']>): string[] {
  const file = (name: string, pem: string) => {
    const path = join(tls.dir, name);
    writeFileSync(path, pem, { mode: 0o600 });
    return path;
  };
  return ['--tls-cert-file', file('redis.crt', tls.cert), '--tls-key-file', file('redis.key', tls.key), '--tls-ca-cert-file', file('ca.crt', tls.ca), '--tls-auth-clients', 'no'];
}
