import type { FastifyInstance } from 'fastify';
import { EVENTS } from '../../events/logger.js';
import { loadMasterKeys } from '../../portal/keys.js';
import { openPortalStore } from '../../portal/open-store.js';
import { actorOf, apiError, type ApiContext } from '../context.js';
import { errorSchema, guarded } from '../schemas.js';

const revokedSchema = {
  type: 'object',
  properties: {
    portalId: { type: 'string' },
    queueId: { type: 'string' },
    recipients: { type: 'integer' },
    revokedAt: { type: 'string', format: 'date-time' },
    by: { type: 'string' },
    already: { type: 'boolean', description: 'it had been withdrawn before (by whom and when is kept)' },
  },
  required: ['portalId', 'revokedAt', 'by', 'already'],
} as const;

/** Withdrawing a portal message: recipients see "withdrawn by the sender" from then on. */
export function portalRoutes(app: FastifyInstance, { config, dataDir, log }: ApiContext): void {
  app.post<{ Params: { id: string } }>(
    '/portal/:id/revoke',
    guarded('operator', {
      summary: 'Withdraw a portal message',
      tags: ['portal'],
      params: { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{16}$' } }, required: ['id'] },
      response: { 200: revokedSchema, 404: errorSchema },
    }),
    async (req) => {
      // The store caches nothing: every worker (and instance) reads the change at once.
      const store = await openPortalStore(config, dataDir, (await loadMasterKeys(config, dataDir)).keys);
      try {
        const m = await store.get(req.params.id);
        if (!m) throw apiError(404, `no portal message ${req.params.id}`);
        const already = Boolean(m.revoked);
        const revoked = m.revoked ?? { at: Date.now(), by: actorOf(req) };
        if (!already) {
          await store.updateMessage(m.id, (current) => (current.revoked ? undefined : { ...current, revoked }));
          log.info({ event: EVENTS.portalRevoked, portalId: m.id, queueId: m.queueId, by: revoked.by }, 'portal message withdrawn');
        }
        return { portalId: m.id, queueId: m.queueId, recipients: m.recipients.length, revokedAt: new Date(revoked.at).toISOString(), by: revoked.by, already };
      } finally {
        await store.close();
      }
    },
  );
}
