import { hashPassword } from '../../src/ingress/password-hash.js';
import { startAdminListener, type AdminListener } from '../../src/api/start.js';
import type { Logger } from '../../src/events/logger.js';
import type { TestGateway } from '../helpers/gateway.js';

/** Cheap scrypt for tests (the format and the check are the same as production's). */
const FAST = { N: 2 ** 10, r: 8, p: 1 };

export const KEYS = {
  ro: 'ro-key-0123456789abcdefghijklmnopqrstuvwxyz',
  op: 'op-key-0123456789abcdefghijklmnopqrstuvwxyz',
  adm: 'adm-key-0123456789abcdefghijklmnopqrstuvwxyz',
} as const;
export const BASIC = { name: 'alice', password: 'correct horse battery staple' };

/** The admin section of a test config: three keys (one per role) and one Basic user. */
export async function adminConfig(extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return {
    listen: '127.0.0.1:0',
    apiKeys: [
      { name: 'reader', hash: await hashPassword(KEYS.ro, FAST), role: 'read-only' },
      { name: 'ops', hash: await hashPassword(KEYS.op, FAST), role: 'operator' },
      { name: 'boss', hash: await hashPassword(KEYS.adm, FAST), role: 'admin' },
    ],
    users: [{ name: BASIC.name, passwordHash: await hashPassword(BASIC.password, FAST), role: 'operator' }],
    ...extra,
  };
}

/**
 * The admin listener over a test gateway's own sources and logger, as `postern start`
 * wires one process: api.call lines are in the gateway's log and its audit trail.
 */
export async function startAdmin(gw: TestGateway): Promise<AdminListener & { url: string; logger: Logger }> {
  const logger = gw.logger;
  const admin = await startAdminListener(gw.config, gw.gateway.dataDir, gw.gateway.operations.sources, logger);
  if (!admin) throw new Error('admin listener disabled in this config');
  return { ...admin, url: `http://127.0.0.1:${admin.port}`, logger };
}

export interface Call {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

/** One HTTP call; `key` is an X-API-Key, or { basic } credentials. */
export async function call(url: string, opts: { method?: string; key?: string; basic?: { name: string; password: string }; json?: unknown } = {}): Promise<Call> {
  const headers: Record<string, string> = {};
  if (opts.key) headers['x-api-key'] = opts.key;
  if (opts.basic) headers.authorization = `Basic ${Buffer.from(`${opts.basic.name}:${opts.basic.password}`).toString('base64')}`;
  if (opts.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method: opts.method ?? 'GET', headers, body: opts.json === undefined ? undefined : JSON.stringify(opts.json) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics, exports)
  }
  return { status: res.status, headers: res.headers, body, text };
}

export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
