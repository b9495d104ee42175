import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.js';
import type { PosternConfig } from '../../src/config/schema.js';
import type { EventBus } from '../../src/events/bus.js';
import { createLogger, eventBusOf, type Logger } from '../../src/events/logger.js';
import { startGateway, type Gateway } from '../../src/main.js';
import { startWebhooks } from '../../src/events/webhooks.js';
import { testConfigInput } from '../helpers/gateway.js';

export type Line = Record<string, unknown> & { event?: string };

/** A logger made by createLogger (so it has a bus) whose printed lines are kept for inspection. */
export function capturedLogger(level = 'info'): { logger: Logger; bus: EventBus; lines: Line[]; printed: string[] } {
  const lines: Line[] = [];
  const printed: string[] = [];
  const logger = createLogger(level, {
    write(line: string) {
      printed.push(line);
      lines.push(JSON.parse(line) as Line);
    },
  });
  return { logger, bus: eventBusOf(logger), lines, printed };
}

export const tempDir = (prefix = 'postern-events-') => mkdtempSync(join(tmpdir(), prefix));

/** Polls until the check passes (returns truthy) or the time is up. */
export async function eventually<T>(check: () => T | Promise<T>, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface BusGateway {
  gateway: Gateway;
  config: PosternConfig;
  port: number;
  dataDir: string;
  logger: Logger;
  bus: EventBus;
  lines: Line[];
  printed: string[];
  /** Stops the gateway; `keep` leaves the data directory for a later look. */
  stop(keep?: boolean): Promise<void>;
}

/**
 * A gateway as main.ts will wire it, with the logger in the test's hands: `before` runs
 * with the bus before the gateway starts (where the audit trail and webhooks subscribe).
 */
export async function gatewayWithBus(overrides: Record<string, unknown>, before?: (o: { bus: EventBus; logger: Logger; dataDir: string; config: PosternConfig }) => Promise<void>): Promise<BusGateway> {
  const dataDir = tempDir('postern-gw-events-');
  const config = validateConfig(testConfigInput(dataDir, overrides));
  const { logger, bus, lines, printed } = capturedLogger(config.log.level);
  await before?.({ bus, logger, dataDir, config });
  const gateway = await startGateway(config, logger);
  const port = (gateway.smtp[0] as { port: number }).port;
  return {
    logger, bus, lines, printed, gateway, config, port, dataDir,
    async stop(keep = false) {
      await gateway.stop();
      if (!keep) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs `postern <args>` in this process, capturing what it prints and its exit code. */
export async function runPostern(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { runCli } = await import('../../src/cli/program.js');
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const previous = process.exitCode;
  process.exitCode = undefined;
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    await runCli(['node', 'postern', ...args]);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = previous;
  return { code, stdout, stderr };
}

/**
 * Webhooks started on their own with a captured logger, as the gateway starts them; `close`
 * is registered in `cleanup` and may also be called by the test (once is enough).
 */
export async function startWebhookSender(
  cleanup: (() => Promise<void>)[],
  o: { config: PosternConfig; dataDir: string; maxPendingPerHook?: number | undefined },
): Promise<ReturnType<typeof capturedLogger> & { close: () => Promise<void> }> {
  const cap = capturedLogger();
  const hooks = await startWebhooks({ config: o.config, dataDir: o.dataDir, shard: 0, bus: cap.bus, logger: cap.logger, maxPendingPerHook: o.maxPendingPerHook });
  let closed = false;
  const close = async () => {
    if (!closed) await hooks.close();
    closed = true;
  };
  cleanup.push(close);
  return { ...cap, close };
}
