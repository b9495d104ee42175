import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { Authenticator, roleAllows, type Credentials } from './auth.js';
import { FailureLimiter } from './auth-limit.js';
import { AuthBusyError } from './auth-queue.js';
import { logApiCalls } from './call-log.js';
import type { ApiContext } from './context.js';
import { archiveRoutes } from './routes/archive.js';
import { keysRoutes } from './routes/keys.js';
import { monitoringRoutes } from './routes/monitoring.js';
import { policyRoutes } from './routes/policy.js';
import { portalRoutes } from './routes/portal.js';
import { queueRoutes } from './routes/queue.js';
import { reportRoutes } from './routes/reports.js';

const REALM = 'Basic realm="postern-admin", charset="UTF-8"';

/**
 * The admin listener: monitoring (/healthz, /readyz, /metrics), the OpenAPI document and
 * the admin API under /api/v1. Every route that names a role needs an API key or a Basic
 * user with at least that role (401 without valid credentials, 403 with too small a
 * role, 429 after too many failures from one address), and every API call is logged as
 * api.call, which the audit trail records (call-log.ts).
 */
export async function createAdminServer(ctx: ApiContext, tls?: { cert: string; key: string }): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 16 * 1024 * 1024,
    // An unknown field is refused (400), not dropped: a misspelt option must not go unnoticed.
    ajv: { customOptions: { removeAdditional: false } },
    ...(tls ? { https: { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' as const } } : {}),
  });
  const auth = new Authenticator(ctx.config.admin);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Postern admin API', version: '1', description: 'Queue, tracing, policy, portal, keys, archive and audit operations of a Postern gateway.' },
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
          basic: { type: 'http', scheme: 'basic' },
        },
      },
    },
  });

  const limiter = new FailureLimiter({ failures: ctx.config.admin.authLimit.failures, windowMs: ctx.config.admin.authLimit.window });
  logApiCalls(app, ctx);
  app.addHook('onRequest', async (req, reply) => {
    const needs = req.routeOptions.config.role;
    if (!needs) return;
    const headers = req.headers as Credentials;
    const presented = Authenticator.presented(headers);
    const blockedMs = presented ? limiter.blockedFor(req.ip) : 0;
    if (blockedMs > 0) {
      return reply.code(429).header('retry-after', String(Math.ceil(blockedMs / 1000))).send({ statusCode: 429, error: 'Too Many Requests', message: `too many failed authentications from ${req.ip}; try again later` });
    }
    try {
      req.principal = await auth.authenticate(headers, req.ip);
    } catch (err) {
      if (!(err instanceof AuthBusyError)) throw err;
      return reply.code(503).header('retry-after', '1').send({ statusCode: 503, error: 'Service Unavailable', message: err.message });
    }
    if (!req.principal) {
      if (presented) limiter.failed(req.ip);
      reply.header('www-authenticate', REALM);
      return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'a valid X-API-Key header or Basic credentials are needed' });
    }
    if (!roleAllows(req.principal.role, needs)) {
      return reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: `role ${req.principal.role} may not do this (needs ${needs})` });
    }
  });

  const api = (r: (app: FastifyInstance, ctx: ApiContext) => void) => app.register(async (scope) => r(scope, ctx), { prefix: '/api/v1' });
  await app.register(async (scope) => monitoringRoutes(scope, ctx));
  await api(queueRoutes);
  await api(reportRoutes);
  await api(policyRoutes);
  await api(portalRoutes);
  await api(keysRoutes);
  await api(archiveRoutes);
  return app;
}
