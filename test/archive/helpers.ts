import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { validateConfig } from '../../src/config/load.js';
import type { PosternConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/events/logger.js';
import { newQueueId } from '../../src/queue/ids.js';
import type { Decision, Envelope } from '../../src/types.js';

export const silent = createLogger('silent');
export const DAY = 86_400_000;

export function tempDir(prefix = 'postern-archive-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A config (as YAML on disk too, for the CLI) with a real master key and the given archive section. */
export function archiveConfig(dataDir: string, archive: Record<string, unknown> = {}): { config: PosternConfig; file: string } {
  const raw = { hostname: 'gw.example.test', dataDir, archive: { masterKeys: [{ id: 'k1', key: randomBytes(32).toString('base64') }], ...archive } };
  const file = join(dataDir, 'postern.yaml');
  writeFileSync(file, stringify(raw));
  return { config: validateConfig(raw), file };
}

export function envelope(opts: { from?: string; to?: string[]; receivedAt?: number; size?: number } = {}): Envelope {
  const receivedAt = opts.receivedAt ?? Date.now();
  return {
    id: newQueueId(receivedAt),
    receivedAt,
    mailFrom: opts.from ?? 'sender@hospital.test',
    rcptTo: opts.to ?? ['patient@example.net'],
    client: { ip: '127.0.0.1', helo: 'relay.test', sessionId: 's1' },
    bodyType: '8bitmime',
    smtpUtf8: false,
    size: opts.size ?? 0,
  };
}

export function message(subject: string, body: string, extra = ''): Buffer {
  return Buffer.from(`From: <sender@hospital.test>\r\nTo: <patient@example.net>\r\nSubject: ${subject}\r\nMessage-ID: <${randomBytes(6).toString('hex')}@hospital.test>\r\nDate: Mon, 6 Jan 2025 10:00:00 +0000\r\n${extra}\r\n${body}\r\n`);
}

export function decisions(env: Envelope, method: Decision['method'] = 'tls'): Decision[] {
  return env.rcptTo.map((rcpt) => ({ rcpt, ruleId: 'default', reasons: [], candidates: ['tls'], tls: 'verify', onNoMethod: 'defer', method }));
}

/** Every file below a directory. */
export function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile());
}

export const filesContaining = (dir: string, marker: string) => allFiles(dir).filter((f) => readFileSync(f).includes(marker));

const run = promisify(execFile);
const ENTRY = join(process.cwd(), 'dist', 'cli', 'postern.cjs');

/** The built CLI (npm test builds it first). */
export async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [ENTRY, ...args], { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
