import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { adminConfig, call, startAdmin } from './admin-helpers.js';

type Operation = { security?: unknown[]; responses?: Record<string, unknown>; parameters?: { name: string; in: string; required?: boolean }[] };
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, unknown> } };

describe('/openapi.json', () => {
  const s = scenario();
  let gw: TestGateway;
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  let doc: Doc;
  beforeAll(async () => {
    gw = await s.gateway({ admin: await adminConfig() });
    admin = await startAdmin(gw);
    const r = await call(`${admin.url}/openapi.json`);
    expect(r.status).toBe(200);
    doc = r.body as Doc;
  });
  afterAll(async () => {
    await admin?.close();
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Parameters<Validator['validate']>[0]);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(doc.openapi).toBe('3.1.0');
  });

  it('describes every endpoint, and every API operation names its security and 401/403', () => {
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
    expect(operations.sort()).toEqual(
      [
        'GET /healthz',
        'GET /readyz',
        'GET /metrics',
        'GET /api/v1/queue',
        'GET /api/v1/queue/{id}',
        'POST /api/v1/queue/{id}/retry',
        'DELETE /api/v1/queue/{id}',
        'GET /api/v1/trace',
        'GET /api/v1/audit/verify',
        'POST /api/v1/policy/explain',
        'POST /api/v1/portal/{id}/revoke',
        'GET /api/v1/keys',
        'POST /api/v1/keys',
        'DELETE /api/v1/keys/{id}',
        'GET /api/v1/archive/search',
        'GET /api/v1/archive/export',
        'GET /api/v1/archive/holds',
        'POST /api/v1/archive/holds',
        'POST /api/v1/archive/holds/{id}/release',
      ].sort(),
    );
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKey', 'basic']);
    for (const [path, methods] of Object.entries(doc.paths)) {
      if (!path.startsWith('/api/')) continue;
      for (const [method, op] of Object.entries(methods)) {
        expect(op.security, `${method} ${path}`).toEqual([{ apiKey: [] }, { basic: [] }]);
        expect(Object.keys(op.responses ?? {}), `${method} ${path}`).toEqual(expect.arrayContaining(['200', '401', '403']));
      }
    }
    expect(doc.paths['/metrics']?.get?.security).toBeUndefined();
    expect(doc.paths['/api/v1/queue/{id}']?.delete?.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'reason', in: 'query', required: true })]));
  });

  it('what the document says a route validates, the route enforces', async () => {
    const r = await call(`${admin.url}/api/v1/policy/explain`, { method: 'POST', key: (await import('./admin-helpers.js')).KEYS.ro, json: { from: 'a@b.test', to: [] } });
    expect(r.status).toBe(400);
    expect((r.body as { message: string }).message).toMatch(/to must NOT have fewer than 1 items/);
  });
});
