import type { FastifyInstance } from 'fastify';
import { verifyAudit } from '../../events/audit-verify.js';
import { parseSince, traceMessages } from '../../events/trace.js';
import { apiError, type ApiContext } from '../context.js';
import { anyObject, errorSchema, guarded } from '../schemas.js';

const verifySchema = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    records: { type: 'integer', description: 'records checked (up to the break)' },
    chains: { type: 'integer' },
    firstBreak: { type: 'object', properties: { file: { type: 'string' }, line: { type: 'integer' }, reason: { type: 'string' } } },
  },
  required: ['ok', 'records', 'chains'],
} as const;

/** Message tracking and the audit trail's check, both read from <dataDir>/audit (src/events). */
export function reportRoutes(app: FastifyInstance, { dataDir }: ApiContext): void {
  app.get<{ Querystring: { q: string; since?: string } }>(
    '/trace',
    guarded('read-only', {
      summary: 'The whole life of a message: by queue id, Message-ID or address',
      tags: ['trace'],
      querystring: {
        type: 'object',
        properties: {
          q: { type: 'string', minLength: 1, description: 'queue id, Message-ID or address (sender or recipient)' },
          since: { type: 'string', description: 'a duration back from now (2h, 3d) or an ISO 8601 time' },
        },
        required: ['q'],
      },
      response: { 200: { type: 'object', properties: { messages: { type: 'array', items: anyObject } }, required: ['messages'] }, 400: errorSchema },
    }),
    async (req) => {
      let since: number | undefined;
      try {
        since = req.query.since === undefined ? undefined : parseSince(req.query.since);
      } catch (err) {
        throw apiError(400, `since: ${(err as Error).message}`);
      }
      return { messages: await traceMessages(dataDir, req.query.q, { since }) };
    },
  );

  app.get(
    '/audit/verify',
    guarded('read-only', { summary: 'Walk the audit trail hash chains and report the first broken link', tags: ['audit'], response: { 200: verifySchema } }),
    () => verifyAudit(dataDir),
  );
}
