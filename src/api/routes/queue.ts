import type { FastifyInstance } from 'fastify';
import { actorOf, apiError, type ApiContext } from '../context.js';
import { decodeCursor, encodeCursor } from '../queue-cursor.js';
import type { QueueChange } from '../queue-ops.js';
import { errorSchema, guarded, queryErrors, queueChangeSchema, queueEntrySchema, queueIdParams, queueListHeaders, queueListQuery, reasonSchema } from '../schemas.js';

const tags = ['queue'];

/** A change's answer as HTTP: 404 unknown id, 409 being delivered right now, 501 backend cannot. */
function settle(change: QueueChange) {
  switch (change.result) {
    case 'done':
      return { id: change.id, shard: change.shard, recipients: change.recipients };
    case 'not-found':
      throw apiError(404, `no queued message ${change.id}`);
    case 'busy':
      throw apiError(409, `message ${change.id} is being delivered right now; try again in a moment`);
    case 'unsupported':
      throw apiError(501, change.message);
  }
}

const changeResponses = { 200: queueChangeSchema, 404: errorSchema, 409: errorSchema, 501: errorSchema };

export function queueRoutes(app: FastifyInstance, { sources }: ApiContext): void {
  const queue = sources.queue;

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/queue',
    {
      ...guarded('read-only', {
        summary: 'List queued messages, one page at a time',
        description:
          'Oldest first, by (receivedAt, id). The body is the page\'s entries; X-Postern-Next-Cursor (and Link rel="next") lead to the next page and are absent on the last one. A message queued from the first page to the last is listed exactly once, whatever arrives or leaves meanwhile.',
        tags,
        querystring: queueListQuery,
        response: { 200: { type: 'array', items: queueEntrySchema, headers: queueListHeaders }, 400: errorSchema },
      }),
      schemaErrorFormatter: queryErrors,
    },
    async (req, reply) => {
      const { limit, cursor } = req.query;
      const page = await queue.list({ limit, after: cursor === undefined ? undefined : decodeCursor(cursor) });
      void reply.header('x-postern-total', String(page.total));
      if (page.next) {
        const next = encodeCursor(page.next);
        void reply.header('x-postern-next-cursor', next).header('link', `<${req.routeOptions.url}?limit=${limit}&cursor=${next}>; rel="next"`);
      }
      return page.entries;
    },
  );

  app.get<{ Params: { id: string } }>(
    '/queue/:id',
    guarded('read-only', { summary: 'One queued message with its recipients', tags, params: queueIdParams, response: { 200: queueEntrySchema, 404: errorSchema } }),
    async (req) => (await queue.show(req.params.id)) ?? Promise.reject(apiError(404, `no queued message ${req.params.id}`)),
  );

  app.post<{ Params: { id: string } }>(
    '/queue/:id/retry',
    guarded('operator', { summary: 'Retry now: every pending recipient becomes due at once', tags, params: queueIdParams, response: changeResponses }),
    async (req) => settle(await queue.retryNow(req.params.id, actorOf(req))),
  );

  app.delete<{ Params: { id: string }; Querystring: { reason: string } }>(
    '/queue/:id',
    guarded('operator', {
      summary: 'Delete a message without a bounce report',
      description: 'Logged as queue.deleted with the reason and who asked.',
      tags,
      params: queueIdParams,
      querystring: { type: 'object', properties: { reason: reasonSchema }, required: ['reason'] },
      response: changeResponses,
    }),
    async (req) => settle(await queue.remove(req.params.id, req.query.reason, actorOf(req))),
  );
}
