import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';
import { healthSchema } from '../schemas.js';
import { METRICS_CONTENT_TYPE } from '../sources.js';

/** /healthz, /readyz, /metrics and /openapi.json: what load balancers, Prometheus and tools read. */
export function monitoringRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness: the process answers', tags: ['monitoring'], response: { 200: { type: 'object', properties: { status: { type: 'string', const: 'alive' } } } } } },
    async () => ({ status: 'alive' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: spool writable, disk not nearly full, journal and Redis available',
        description: 'While not ready, SMTP answers 451 4.3.0 (452 4.3.1 when storage is short) to new mail.',
        tags: ['monitoring'],
        response: { 200: healthSchema, 503: healthSchema },
      },
    },
    async (_req, reply) => {
      const report = await ctx.sources.readiness();
      return reply.code(report.ready ? 200 : 503).send(report);
    },
  );

  app.get(
    '/metrics',
    {
      config: ctx.config.admin.metricsAuth ? { role: 'read-only' } : {},
      schema: {
        summary: 'Prometheus metrics (text exposition format 0.0.4)',
        tags: ['monitoring'],
        ...(ctx.config.admin.metricsAuth ? { security: [{ apiKey: [] }, { basic: [] }] } : {}),
        response: { 200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_req, reply) => reply.type(METRICS_CONTENT_TYPE).send(await ctx.sources.metrics()),
  );

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
