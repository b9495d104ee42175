import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey } from 'openpgp';
import { afterAll, describe, expect, it } from 'vitest';
import { auditRecords } from '../../src/events/audit-read.js';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { adminConfig, BASIC, call, KEYS, until } from './admin-helpers.js';

interface Planned {
  method: string;
  path: string;
  route: string;
  status: number;
  actor: string;
  opts: Parameters<typeof call>[1];
}

const MISSING = '01ZZZZZZZZZZZZZZZZ';

/** Calls that are answered 200, 401, 403 (and 400/404), by key and by Basic user. */
async function plan(): Promise<Planned[]> {
  const { publicKey } = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'audited@dest.test' }], format: 'armored' });
  const p = (method: string, path: string, route: string, status: number, actor: string, opts: Planned['opts'] = {}): Planned => ({ method, path, route, status, actor, opts: { method, ...opts } });
  return [
    p('GET', '/api/v1/queue', '/api/v1/queue', 200, 'reader', { key: KEYS.ro }),
    p('GET', '/api/v1/queue', '/api/v1/queue', 200, BASIC.name, { basic: BASIC }),
    p('GET', '/api/v1/queue', '/api/v1/queue', 401, 'anonymous', { key: 'wrong-key-0123456789abcdefghijklmnopqrs' }),
    p('GET', '/api/v1/keys', '/api/v1/keys', 401, 'anonymous'),
    p('GET', '/api/v1/queue', '/api/v1/queue', 401, 'anonymous', { basic: { name: BASIC.name, password: 'not the password' } }),
    p('DELETE', `/api/v1/queue/${MISSING}`, '/api/v1/queue/:id', 403, 'reader', { key: KEYS.ro }),
    p('POST', '/api/v1/keys', '/api/v1/keys', 403, 'reader', { key: KEYS.ro, json: { material: publicKey } }),
    p('POST', '/api/v1/keys', '/api/v1/keys', 200, 'ops', { key: KEYS.op, json: { material: publicKey } }),
    p('GET', '/api/v1/keys', '/api/v1/keys', 200, 'boss', { key: KEYS.adm }),
    p('POST', `/api/v1/queue/${MISSING}/retry`, '/api/v1/queue/:id/retry', 404, 'ops', { key: KEYS.op }),
    p('POST', '/api/v1/policy/explain', '/api/v1/policy/explain', 400, 'reader', { key: KEYS.ro, json: { from: 'a@b.test', to: ['c@d.test'], bogus: 1 } }),
  ];
}

const sig = (x: Record<string, unknown>) => `${String(x.method)} ${String(x.path)} ${String(x.route)} ${String(x.status)} ${String(x.actor)}`;

/**
 * "Every call is audited", shown on the gateway as production runs it (`postern start`
 * in its own process): each call is exactly one api.call record in the audit trail on
 * disk, with who, what, the answer and from where — in one process and in a cluster,
 * where the primary serves the admin listener and keeps its own chain.
 */
describe.each([1, 2])('api.call records on disk, workers: %i', (workers) => {
  const dir = mkdtempSync(join(tmpdir(), `postern-audit-calls-${workers}-`));
  const dataDir = join(dir, 'data');
  let gw: ChildGateway | undefined;
  afterAll(() => {
    gw?.killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('each call, allowed or refused, is exactly one record with actor, status, ip, method and route', async () => {
    gw = await startChildGateway(dir, testConfigInput(dataDir, { workers, log: { level: 'info' }, admin: await adminConfig() }));
    await until(() => gw!.logs.some((l) => l.event === 'admin.listen'), 10_000, 'admin listener');
    // Every worker ready (the primary says so once all are): until then, a call about a
    // message no shard that answered has is 503 (a shard still starting may hold it), not 404.
    await until(() => gw!.logs.some((l) => l.event === 'gateway.ready' && (workers === 1 || l.workers === workers)), 15_000, 'every worker ready');
    const url = `http://127.0.0.1:${gw.logs.find((l) => l.event === 'admin.listen')?.port as number}`;
    const calls = await plan();
    for (const c of calls) expect((await call(`${url}${c.path}`, c.opts)).status, sig({ ...c })).toBe(c.status);

    const chain = workers === 1 ? '0' : 'primary';
    const records = async () => {
      const out: Record<string, unknown>[] = [];
      for await (const r of auditRecords(dataDir)) if (r.event === 'api.call') out.push({ ...r.fields, shard: r.shard });
      return out;
    };
    const expected = calls.map((c) => sig({ ...c })).sort();
    await until(async () => (await records()).length >= calls.length, 10_000, 'every call on disk');
    // A graceful stop writes whatever is left: still exactly one record per call.
    gw.proc.kill('SIGTERM');
    expect((await gw.exited).code).toBe(0);
    const onDisk = await records();
    expect(onDisk.map(sig).sort()).toEqual(expected);
    for (const r of onDisk) {
      expect(r).toMatchObject({ shard: chain, ip: '127.0.0.1' });
      expect(typeof r.path).toBe('string');
    }
    // Who and how: the key's name and role, or the Basic user; a refusal says whether credentials were given.
    expect(onDisk.find((r) => r.status === 403 && r.method === 'DELETE')).toMatchObject({ actor: 'reader', role: 'read-only', via: 'api-key', queueId: MISSING });
    expect(onDisk.filter((r) => r.status === 401).map((r) => r.authFailure).sort()).toEqual(['invalid', 'invalid', 'missing']);
    expect(onDisk.find((r) => r.actor === BASIC.name)).toMatchObject({ role: 'operator', via: 'basic', status: 200 });
    // Never the credentials themselves.
    const text = JSON.stringify(onDisk);
    for (const secret of [...Object.values(KEYS), BASIC.password]) expect(text).not.toContain(secret);
  });
});
