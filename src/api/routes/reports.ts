import type { FastifyInstance } from 'fastify';
import { apiError, type ApiContext } from '../context.js';
import { anyObject, errorSchema, guarded } from '../schemas.js';

type TraceFn = (dataDir: string, query: string, opts: { since?: number | undefined }) => Promise<unknown>;
type VerifyFn = (dataDir: string) => Promise<unknown>;

/**
 * The function `name` of the first of `modules` that exists, else undefined. Message
 * tracking and the audit trail are built alongside this API; until their modules are
 * there, their endpoints answer 501 instead of the build failing.
 */
async function optionalFunction<T>(modules: string[], name: string): Promise<T | undefined> {
  for (const spec of modules) {
    try {
      const mod = (await import(spec)) as Record<string, unknown>;
      if (typeof mod[name] === 'function') return mod[name] as T;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ERR_MODULE_NOT_FOUND' && !/Cannot find module|Failed to load url/.test((err as Error).message)) throw err;
    }
  }
  return undefined;
}

const TRACE_MODULES = ['../../events/trace.js'];
const AUDIT_MODULES = ['../../events/audit-verify.js', '../../events/audit.js'];

export function reportRoutes(app: FastifyInstance, { dataDir }: ApiContext): void {
  app.get<{ Querystring: { q: string; since?: string } }>(
    '/trace',
    guarded('read-only', {
      summary: 'The whole life of a message: by queue id, Message-ID or address',
      tags: ['trace'],
      querystring: {
        type: 'object',
        properties: { q: { type: 'string', minLength: 1, description: 'queue id, Message-ID or address' }, since: { type: 'string', format: 'date-time', description: 'only events at or after this time' } },
        required: ['q'],
      },
      response: { 200: anyObject, 400: errorSchema, 501: errorSchema },
    }),
    async (req) => {
      const trace = await optionalFunction<TraceFn>(TRACE_MODULES, 'traceMessages');
      if (!trace) throw apiError(501, 'message tracking (src/events/trace.ts traceMessages) is not in this build yet');
      const since = req.query.since === undefined ? undefined : Date.parse(req.query.since);
      if (since !== undefined && !Number.isFinite(since)) throw apiError(400, `since: "${req.query.since}" is not a date-time`);
      const result = await trace(dataDir, req.query.q, { since });
      return Array.isArray(result) ? { messages: result } : result;
    },
  );

  app.get(
    '/audit/verify',
    guarded('read-only', {
      summary: 'Walk the audit trail hash chain and report the first broken link',
      tags: ['audit'],
      response: { 200: anyObject, 501: errorSchema },
    }),
    async () => {
      const verify = await optionalFunction<VerifyFn>(AUDIT_MODULES, 'verifyAudit');
      if (!verify) throw apiError(501, 'audit trail verification (src/events/audit*.ts verifyAudit) is not in this build yet');
      return verify(dataDir);
    },
  );
}
