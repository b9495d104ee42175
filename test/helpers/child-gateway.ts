import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeConfigFile, type LogLine } from './gateway.js';

const ENTRY = join(process.cwd(), 'dist', 'cli', 'postern.cjs');

export interface ChildGateway {
  proc: ChildProcess;
  /** kill -9 of the whole gateway: primary and worker processes together. */
  killAll(): void;
  port: number;
  logs: LogLine[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** How it ended, if it has (for a failing test's message). */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** What it wrote to stderr so far. */
  stderr(): string;
}

/**
 * Runs the built gateway (`npm test` builds dist/ first) as its own process, for tests
 * that kill it or send it signals. Resolves once it logs gateway.ready. `wrap`: a command
 * that execs the gateway's command line given after it (e.g. unshare, for a private
 * mount namespace): the process keeps its pid.
 */
export async function startChildGateway(dir: string, configInput: Record<string, unknown>, opts: { wrap?: string[] } = {}): Promise<ChildGateway> {
  if (!existsSync(ENTRY)) throw new Error(`${ENTRY} is missing: run "npm run build" (npm test does it for you)`);
  const file = writeConfigFile(dir, configInput);
  const line = [...(opts.wrap ?? []), process.execPath, ENTRY, 'start', '--config', file];
  const [command, ...args] = line as [string, ...string[]];
  // Its own process group, so a test can kill the primary and its workers at once.
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const logs: LogLine[] = [];
  let ended: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve((ended = { code, signal }))));
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<number>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as LogLine;
        logs.push(parsed);
        if (parsed.event === 'gateway.ready') resolve((parsed.smtp as { port: number }[])[0]!.port);
      } catch {
        // not JSON
      }
    });
    void exited.then(({ code }) => {
      const lastLines = logs.slice(-5).map((l) => JSON.stringify(l)).join('\n');
      reject(new Error(`gateway exited with ${code} before ready: ${stderr}\n${lastLines}`));
    });
  });
  const port = await ready;
  const killAll = () => {
    try {
      process.kill(-(proc.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
  };
  return { proc, port, logs, exited, killAll, exit: () => ended, stderr: () => stderr };
}

/** The first log line of a child gateway that matches, waiting for it to come (startChildGateway returns at the first gateway.ready). */
export async function waitForLog(g: ChildGateway, pred: (l: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = g.logs.find(pred);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching log line from the gateway in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
