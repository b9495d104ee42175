import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.js';
import type { PosternConfig } from '../../src/config/schema.js';
import { createLogger, type Logger } from '../../src/events/logger.js';
import { startGateway, type Gateway } from '../../src/main.js';
import { stringify } from 'yaml';

/** TLS-only policy that leaves the route's TLS level in charge (see the file). */
export const RELAY_POLICY = join(process.cwd(), 'test', 'fixtures', 'policy-relay.yaml');

export type LogLine = Record<string, unknown> & { event?: string; msg?: string };

export interface TestGateway {
  gateway: Gateway;
  config: PosternConfig;
  port: number;
  dataDir: string;
  logs: LogLine[];
  /** The gateway's logger (its event bus feeds the audit trail, metrics and webhooks). */
  logger: Logger;
  events(code: string): LogLine[];
  /** Resolves when a log line matching the predicate appears. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(): Promise<void>;
}

/** A minimal config for tests: loopback listener, local clients, fast retries. */
export function testConfigInput(dataDir: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    hostname: 'postern.test',
    dataDir,
    log: { level: 'debug' },
    smtp: { listen: ['127.0.0.1:0'], clients: [{ name: 'loopback', cidr: ['127.0.0.0/8'] }] },
    delivery: { retry: { initialDelay: '300ms', maxDelay: '1s', lifetime: '1h' }, dns: { cacheTtl: 0 } },
    shutdown: { timeout: '5s' },
    policy: { file: RELAY_POLICY },
    portal: { listen: '127.0.0.1:0' },
    // A free port: test files run in parallel and must not fight over 9025.
    admin: { listen: '127.0.0.1:0' },
  };
  return deepMerge(base, overrides);
}

export interface TestGatewayHooks {
  /** Runs once the gateway has stopped, before its data directory is removed (e.g. to check its archive). */
  afterStop?: (gw: TestGateway) => Promise<void>;
}

export async function startTestGateway(overrides: Record<string, unknown> = {}, dataDir = mkdtempSync(join(tmpdir(), 'postern-gw-')), hooks: TestGatewayHooks = {}): Promise<TestGateway> {
  const config = validateConfig(testConfigInput(dataDir, overrides));
  const logs: LogLine[] = [];
  const listeners = new Set<(l: LogLine) => void>();
  const logger = createLogger(config.log.level, {
    write(line: string) {
      const parsed = JSON.parse(line) as LogLine;
      logs.push(parsed);
      for (const l of listeners) l(parsed);
    },
  });
  const gateway = await startGateway(config, logger);
  const tg: TestGateway = {
    gateway,
    config,
    port: (gateway.smtp[0] as { port: number }).port,
    dataDir,
    logs,
    logger,
    events: (code) => logs.filter((l) => l.event === code),
    waitForLog(pred, timeoutMs = 20_000) {
      const found = logs.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error('log line did not appear in time'));
        }, timeoutMs);
        const check = (l: LogLine) => {
          if (pred(l)) {
            clearTimeout(timer);
            listeners.delete(check);
            resolve(l);
          }
        };
        listeners.add(check);
      });
    },
    async stop() {
      await gateway.stop();
      try {
        await hooks.afterStop?.(tg);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
  return tg;
}

/** Writes a YAML config for a gateway run as a child process. */
export function writeConfigFile(dir: string, input: Record<string, unknown>): string {
  const file = join(dir, 'postern.yaml');
  writeFileSync(file, stringify(input));
  return file;
}

export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev) ? deepMerge(prev as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}
