import type { FastifyInstance } from 'fastify';
import { openArchive, withAdminChain } from '../../archive/admin.js';
import { AdminChainBroken, verifiedAdminState } from '../../archive/admin-state.js';
import { ChainBusy } from '../../archive/chain-lock.js';
import { mboxStream } from '../../archive/export-mbox.js';
import { zipStream } from '../../archive/export-zip.js';
import { addHold, releaseHold } from '../../archive/hold-log.js';
import { checkHoldCriteria, type Hold } from '../../archive/holds.js';
import { logExported, logSearched } from '../../archive/access-log.js';
import { incompleteReasons, searchArchive, type SearchQuery } from '../../archive/search.js';
import { parseRange } from '../../cli/archive-common.js';
import { roleAllows, type Role } from '../auth.js';
import { actorOf, apiError, type ApiContext } from '../context.js';
import { anyObject, errorSchema, guarded, queryErrors, reasonSchema } from '../schemas.js';

const tags = ['archive'];
/** On a search or export whose search may have missed messages: why. */
const INCOMPLETE_HEADER = 'x-postern-incomplete';

type Filters = Partial<Record<'since' | 'until' | 'participant' | 'sender' | 'recipient' | 'subject' | 'messageId' | 'keyword', string>>;

/**
 * The least role that may learn what messages say: export them, search them by keyword
 * (hit or miss tells whether a patient's mail mentions a diagnosis), see a hold's keyword.
 */
const CONTENT_ROLE: Role = 'admin';

// minLength 1: an empty value (participant=) must not drop the filter and widen an export to everything.
const filterProperties = {
  since: { type: 'string', minLength: 1, description: 'received on or after: 2026-01-31 (from the start of that UTC day) or a date-time with Z or an offset' },
  until: { type: 'string', minLength: 1, description: 'received on or before: 2026-01-31 (to the end of that UTC day) or a date-time with Z or an offset' },
  participant: { type: 'string', minLength: 1, description: 'sender or any recipient; * matches any run of characters' },
  sender: { type: 'string', minLength: 1 },
  recipient: { type: 'string', minLength: 1 },
  subject: { type: 'string', minLength: 1, description: 'part of the subject, case-insensitive' },
  messageId: { type: 'string', minLength: 1 },
  keyword: { type: 'string', minLength: 1, description: `in the decrypted text (bounded by archive.searchLimits); needs role ${CONTENT_ROLE}` },
} as const;

/** A query parameter these routes do not have (partcipant=, sinse=) is refused, not ignored: an export would hold every message. */
const strictQuery = <P extends Record<string, unknown>>(properties: P) => ({ type: 'object', properties, additionalProperties: false }) as const;

/** The caller's mistake (a bad date, a custodian that is no address): 400, not 500. */
function badRequestIfThrows<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw apiError(400, (err as Error).message);
  }
}

const queryOf = (f: Filters): SearchQuery => badRequestIfThrows(() => ({ ...f, ...parseRange(f.since, f.until, { since: 'since', until: 'until' }) }));

/** A hold as a caller below CONTENT_ROLE sees it: that it has a keyword, not the words. */
function withoutKeyword(h: Hold): Omit<Hold, 'keyword'> & { keywordGiven?: true } {
  const { keyword, ...rest } = h;
  return keyword ? { ...rest, keywordGiven: true } : rest;
}

/** The admin chain does not verify: the caller cannot be given (or act on) its holds. */
function brokenIs409(err: unknown): never {
  throw err instanceof AdminChainBroken ? apiError(409, err.message) : err;
}

/** A hold change refused: 409 when the admin chain does not verify or stays in use (try again), else the request's fault (400). */
function holdChangeRefused(err: Error): never {
  throw apiError(err instanceof AdminChainBroken || err instanceof ChainBusy ? 409 : 400, err.message);
}

const holdBody = {
  type: 'object',
  properties: { reason: reasonSchema, custodian: { type: 'string' }, since: filterProperties.since, until: filterProperties.until, keyword: { type: 'string' } },
  required: ['reason'],
  additionalProperties: false,
} as const;

/** Search, export and legal holds of the compliance archive (src/archive), as the CLI does them. */
export function archiveRoutes(app: FastifyInstance, { config, dataDir, log }: ApiContext): void {
  const open = () => openArchive(config, dataDir);

  app.get<{ Querystring: Filters }>(
    '/archive/search',
    {
      ...guarded('read-only', {
        summary: 'Find archived messages (metadata only, no content)',
        description: `A keyword search (over the decrypted text) needs role ${CONTENT_ROLE}: its hits tell what messages say.`,
        tags,
        querystring: strictQuery(filterProperties),
        response: { 200: anyObject, 400: errorSchema },
      }),
      schemaErrorFormatter: queryErrors,
    },
    async (req, reply) => {
      const role = req.principal?.role ?? 'read-only';
      if (req.query.keyword !== undefined && !roleAllows(role, CONTENT_ROLE)) throw apiError(403, `role ${role} may not search by keyword (needs ${CONTENT_ROLE}): its hits tell what messages say`);
      const query = queryOf(req.query);
      const r = await searchArchive((await open()).reader, query, config.archive.searchLimits);
      logSearched(log, { actor: actorOf(req), via: 'api', query, result: r });
      const incomplete = incompleteReasons(r);
      if (incomplete.length) void reply.header(INCOMPLETE_HEADER, incomplete.join('; '));
      return { hits: r.hits.map((h) => h.meta), examined: r.examined, complete: !incomplete.length, incomplete, keyword: r.keyword, unreadable: r.unreadable };
    },
  );

  app.get<{ Querystring: Filters & { format: 'mbox' | 'zip'; allowPartial?: boolean } }>(
    '/archive/export',
    {
      ...guarded(CONTENT_ROLE, {
        summary: 'Export what a search finds: mbox (mboxrd) or zip of .eml with a SHA-256 manifest',
        description: `Hands out message content: admin only. A search that may have missed messages (a keyword limit reached, unreadable items) is refused with 409 unless allowPartial=true and format=zip; then the export carries ${INCOMPLETE_HEADER} and the zip an INCOMPLETE.txt (an mbox could not say it is incomplete, so a partial one is refused).`,
        tags,
        querystring: { ...strictQuery({ format: { type: 'string', enum: ['mbox', 'zip'] }, allowPartial: { type: 'boolean', default: false }, ...filterProperties }), required: ['format'] },
        response: { 200: { description: 'the export file', content: { 'application/mbox': { schema: { type: 'string' } }, 'application/zip': { schema: { type: 'string', contentMediaType: 'application/zip' } } } }, 400: errorSchema, 409: errorSchema },
      }),
      schemaErrorFormatter: queryErrors,
    },
    async (req, reply) => {
      const { reader } = await open();
      const query = queryOf(req.query);
      const format = req.query.format;
      const r = await searchArchive(reader, query, config.archive.searchLimits);
      const access = { actor: actorOf(req), via: 'api', query, result: r, format };
      const incomplete = incompleteReasons(r);
      if (incomplete.length && !req.query.allowPartial) {
        logExported(log, { ...access, outcome: 'refused' });
        throw apiError(409, `the search may miss messages (${incomplete.join('; ')}): narrow it, or add allowPartial=true to export what it found`);
      }
      // An mbox has no place to say it is incomplete once it is saved (the header stays with the response).
      if (incomplete.length && format === 'mbox') {
        logExported(log, { ...access, outcome: 'refused' });
        throw apiError(409, `the search may miss messages (${incomplete.join('; ')}): an incomplete export is given only as a zip, which carries INCOMPLETE.txt and its manifest: ask for format=zip&allowPartial=true, or narrow the search`);
      }
      // Streamed straight to the response, decrypted item by item: no clear copy on disk
      // that a crash would leave behind. A failure part way cuts the transfer off.
      const body = format === 'mbox' ? mboxStream(reader, r.hits) : zipStream(reader, r.hits, incomplete);
      let failure: string | undefined;
      body.on('error', (err) => (failure = err.message));
      // Recorded when the transfer ends: completed, or cut off (an item failed, the client left).
      body.on('close', () => logExported(log, { ...access, outcome: body.readableEnded && !failure ? 'completed' : 'aborted', err: failure ?? (body.readableEnded ? undefined : 'the transfer was cut off') }));
      if (incomplete.length) void reply.header(INCOMPLETE_HEADER, incomplete.join('; '));
      return reply
        .type(format === 'mbox' ? 'application/mbox' : 'application/zip')
        .header('content-disposition', `attachment; filename="postern-archive.${format}"`)
        .header('x-postern-count', String(r.hits.length))
        .send(body);
    },
  );

  app.get(
    '/archive/holds',
    {
      ...guarded('read-only', {
        summary: 'Legal holds, active and released',
        description: `Read from the admin chain once it verifies: 409 with the problem when it does not (a list from a damaged chain could miss holds). A hold's keyword is shown to role ${CONTENT_ROLE}; below it, keywordGiven: true instead.`,
        tags,
        querystring: strictQuery({}),
        response: { 200: { type: 'object', properties: { holds: { type: 'array', items: anyObject } } }, 400: errorSchema, 409: errorSchema },
      }),
      schemaErrorFormatter: queryErrors,
    },
    async (req) => {
      const { holds } = await verifiedAdminState((await open()).reader).catch(brokenIs409);
      const seesKeywords = roleAllows(req.principal?.role ?? 'read-only', CONTENT_ROLE);
      return { holds: [...holds.values()].map((h) => (seesKeywords ? h : withoutKeyword(h))) };
    },
  );

  app.post<{ Body: { reason: string; custodian?: string; since?: string; until?: string; keyword?: string } }>(
    '/archive/holds',
    guarded('admin', { summary: 'Place a legal hold (custodian, date range and/or keyword; all given must match)', description: '409 while the admin chain does not verify, or while another process keeps it in use.', tags, body: holdBody, response: { 200: anyObject, 400: errorSchema, 409: errorSchema } }),
    async (req) => {
      const { custodian, keyword, reason } = req.body;
      const { since, until } = queryOf(req.body);
      badRequestIfThrows(() => checkHoldCriteria({ custodian, since, until, keyword }));
      return withAdminChain((await open()).reader, (chain) => addHold(chain, { custodian, since, until, keyword }, reason, actorOf(req), log)).catch(holdChangeRefused);
    },
  );

  app.post<{ Params: { id: string }; Body: { reason: string } }>(
    '/archive/holds/:id/release',
    guarded('admin', {
      summary: 'Release a legal hold; its items follow their retention again',
      tags,
      params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
      body: { type: 'object', properties: { reason: reasonSchema }, required: ['reason'], additionalProperties: false },
      response: { 200: anyObject, 400: errorSchema, 409: errorSchema },
    }),
    async (req) => {
      const { reader } = await open();
      // The state is read with the chain held: a release read before it could release a hold twice.
      return withAdminChain(reader, async (chain) => releaseHold(chain, await verifiedAdminState(reader), req.params.id, req.body.reason, actorOf(req), log)).catch(holdChangeRefused);
    },
  );
}
