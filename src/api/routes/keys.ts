import type { FastifyInstance } from 'fastify';
import { EVENTS } from '../../events/logger.js';
import { importKeys } from '../../keys/import.js';
import { openKeyStore } from '../../keys/open-store.js';
import type { SmimeTrust } from '../../keys/smime-trust.js';
import { loadSmimeTrust } from '../../keys/start.js';
import type { KeyStore } from '../../keys/store.js';
import { actorOf, apiError, type ApiContext } from '../context.js';
import { errorSchema, guarded } from '../schemas.js';

const tags = ['keys'];

const keySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', enum: ['pgp', 'smime'] },
    addresses: { type: 'array', items: { type: 'string' } },
    source: { type: 'string' },
    from: { type: 'string', description: 'where a discovered key was found: wkd:advanced, wkd:direct or the keyserver URL' },
    addedAt: { type: 'string', format: 'date-time' },
  },
  required: ['id', 'kind', 'addresses', 'source', 'addedAt'],
} as const;

const importResultSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    addresses: { type: 'array', items: { type: 'string' } },
    stored: { type: 'boolean' },
    refused: { type: 'string', description: 'why it was not stored' },
    expiresAt: { type: 'string', format: 'date-time' },
  },
  required: ['id', 'kind', 'addresses', 'stored'],
} as const;

/**
 * Recipients' OpenPGP keys and S/MIME certificates: the store every worker reads (under
 * <dataDir>/keys, or on the shared Redis with queue.backend: redis), opened at first use.
 */
export function keysRoutes(app: FastifyInstance, { config, dataDir, log }: ApiContext): void {
  let opening: Promise<KeyStore> | undefined;
  const keyStore = () =>
    (opening ??= openKeyStore(config, dataDir, log).catch((err: unknown) => {
      opening = undefined; // Redis unreachable now: the next request tries again
      throw err;
    }));
  app.addHook('onClose', async () => {
    await (await opening?.catch(() => undefined))?.close();
  });
  let trust: Promise<SmimeTrust> | undefined;
  const trustAnchors = () =>
    (trust ??= loadSmimeTrust(config, log).then(
      (t) => t.smimeTrust,
      (err: unknown) => {
        trust = undefined; // a CRL unreadable now (being replaced, say): the next import reads them again
        throw err;
      },
    ));

  app.get('/keys', guarded('read-only', { summary: 'Stored keys and certificates (without the key material)', tags, response: { 200: { type: 'array', items: keySchema } } }), async () => {
    const store = await keyStore();
    return (await store.all()).map((r) => ({ id: r.id, kind: r.kind, addresses: r.addresses, source: r.source, from: r.from, addedAt: new Date(r.addedAt).toISOString() }));
  });

  app.post<{ Body: { material: string; address?: string; domain?: string } }>(
    '/keys',
    guarded('operator', {
      summary: 'Import armored OpenPGP keys and PEM S/MIME certificates',
      description: 'A key that could not be used now (expired, revoked, weak, untrusted, not naming the address) is refused with the reason.',
      tags,
      body: {
        type: 'object',
        properties: {
          material: { type: 'string', minLength: 1, description: 'armored key blocks and/or PEM certificates' },
          address: { type: 'string', description: 'serve only this address (it must be in the key)' },
          domain: { type: 'string', description: 'serve every address of this domain (gateway-to-gateway key)' },
        },
        required: ['material'],
        additionalProperties: false,
      },
      response: { 200: { type: 'object', properties: { results: { type: 'array', items: importResultSchema } }, required: ['results'] }, 400: errorSchema },
    }),
    async (req) => {
      const store = await keyStore();
      const results = await importKeys(store, req.body.material, { address: req.body.address, domain: req.body.domain, smimeTrust: await trustAnchors() });
      if (!results.length) throw apiError(400, 'material holds no OpenPGP key block or PEM certificate');
      const stored = results.filter((r) => !r.refused);
      if (stored.length) log.info({ event: EVENTS.keysImported, actor: actorOf(req), keyIds: stored.map((r) => r.id) }, 'keys imported');
      return {
        results: results.map((r) => ({ id: r.id, kind: r.kind, addresses: r.addresses, stored: !r.refused, refused: r.refused, expiresAt: r.expiresAt === undefined ? undefined : new Date(r.expiresAt).toISOString() })),
      };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/keys/:id',
    guarded('operator', {
      summary: 'Remove a stored key or certificate (by id, or by its fingerprint)',
      tags,
      params: { type: 'object', properties: { id: { type: 'string', minLength: 8 } }, required: ['id'] },
      response: { 200: { type: 'object', properties: { removed: { type: 'string' } }, required: ['removed'] }, 404: errorSchema },
    }),
    async (req) => {
      const store = await keyStore();
      if (!(await store.remove(req.params.id))) throw apiError(404, `no stored key ${req.params.id}`);
      log.info({ event: EVENTS.keysRemoved, actor: actorOf(req), keyId: req.params.id }, 'key removed');
      return { removed: req.params.id };
    },
  );
}
