import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { EVENTS } from '../events/logger.js';
import { Authenticator, roleAllows } from './auth.js';
import { actorOf, type ApiContext } from './context.js';
import { archiveRoutes } from './routes/archive.js';
import { keysRoutes } from './routes/keys.js';
import { monitoringRoutes } from './routes/monitoring.js';
import { policyRoutes } from './routes/policy.js';
import { portalRoutes } from './routes/portal.js';
import { queueRoutes } from './routes/queue.js';
import { reportRoutes } from './routes/reports.js';

const REALM = 'Basic realm="postern-admin", charset="UTF-8"';

/**
 * What api.call says about the request target: the path without the query, and only
 * the names of the query parameters. Their values can be content (an archive search by
 * subject= or keyword=), which the log and the audit trail never hold.
 */
export function requestTarget(url: string): { path: string; query?: string[] | undefined } {
  const q = url.indexOf('?');
  if (q === -1) return { path: url };
  const names = [...new Set(new URLSearchParams(url.slice(q + 1)).keys())];
  return { path: url.slice(0, q), query: names.length ? names : undefined };
}

/**
 * The admin listener: monitoring (/healthz, /readyz, /metrics), the OpenAPI document and
 * the admin API under /api/v1. Every route that names a role needs an API key or a Basic
 * user with at least that role (401 without valid credentials, 403 with too small a
 * role), and every API call is logged as api.call, which the audit trail records.
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

  app.addHook('onRequest', async (req, reply) => {
    const needs = req.routeOptions.config.role;
    if (!needs) return;
    req.principal = await auth.authenticate(req.headers as Parameters<Authenticator['authenticate']>[0]);
    if (!req.principal) {
      reply.header('www-authenticate', REALM);
      return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'a valid X-API-Key header or Basic credentials are needed' });
    }
    if (!roleAllows(req.principal.role, needs)) {
      return reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: `role ${req.principal.role} may not do this (needs ${needs})` });
    }
  });

  // Every API call, allowed or not, is one api.call line (never the credentials themselves).
  app.addHook('onResponse', async (req, reply) => {
    if (!req.url.startsWith('/api/')) return;
    const route = req.routeOptions.url;
    // A queue id as its own field, so `postern trace` shows who retried or deleted a message.
    const queueId = route?.startsWith('/api/v1/queue/:id') ? (req.params as { id?: string }).id : undefined;
    const line = { event: EVENTS.apiCall, actor: actorOf(req), role: req.principal?.role, via: req.principal?.via, method: req.method, ...requestTarget(req.url), route, queueId, status: reply.statusCode, ip: req.ip };
    if (reply.statusCode === 401 || reply.statusCode === 403) ctx.log.warn(line, 'admin API call refused');
    else ctx.log.info(line, 'admin API call');
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
