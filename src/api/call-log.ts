import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EVENTS } from '../events/logger.js';
import { Authenticator, type Credentials } from './auth.js';
import { actorOf, type ApiContext } from './context.js';
import type { AuditGate } from './sources.js';

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

/** How long a change waits for its audit records to be written before it answers 503. */
const AUDIT_WAIT_MS = 5000;

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A call that changes something (retry, delete, revoke, import, hold): audited before its reply. */
const changes = (req: FastifyRequest) => !READS.has(req.method) && req.routeOptions.config.role !== undefined && req.routeOptions.config.role !== 'read-only';

/** Why a call was refused for its credentials: none given (a client's first try), wrong ones (counted per address), or too many wrong ones. */
function authFailure(req: FastifyRequest, status: number): 'missing' | 'invalid' | 'rate-limited' | undefined {
  if (status === 429) return 'rate-limited';
  if (status !== 401) return undefined;
  return Authenticator.presented(req.headers as Credentials) ? 'invalid' : 'missing';
}

const body503 = (message: string) => ({ statusCode: 503, error: 'Service Unavailable', message });

/**
 * api.call: one line per request under /api/ — answered, refused, or cut off by the
 * client (aborted: true; fastify's onResponse never runs for a reply that did not
 * finish, e.g. an archive export the client stopped reading). A change made through
 * the API is on disk in the audit trail before its reply leaves: while the trail cannot
 * be written, changes are refused with 503 before they are made, and a change whose
 * records could not be written in time answers 503 saying it was made.
 */
export function logApiCalls(app: FastifyInstance, ctx: ApiContext): void {
  const logged = new WeakSet<FastifyRequest>();
  const log = (req: FastifyRequest, reply: FastifyReply, aborted: boolean) => {
    if (logged.has(req)) return;
    logged.add(req);
    const route = req.routeOptions.url;
    // A queue id as its own field, so `postern trace` shows who retried or deleted a message.
    const queueId = route?.startsWith('/api/v1/queue/:id') ? (req.params as { id?: string } | undefined)?.id : undefined;
    const line = {
      event: EVENTS.apiCall,
      actor: actorOf(req),
      role: req.principal?.role,
      via: req.principal?.via,
      method: req.method,
      ...requestTarget(req.url),
      route,
      queueId,
      status: reply.statusCode,
      authFailure: authFailure(req, reply.statusCode),
      aborted: aborted || undefined,
      ip: req.ip,
    };
    if (aborted || reply.statusCode === 401 || reply.statusCode === 403 || reply.statusCode === 429) ctx.log.warn(line, aborted ? 'admin API call cut off by the client' : 'admin API call refused');
    else ctx.log.info(line, 'admin API call');
  };
  const audit: AuditGate | undefined = ctx.sources.audit;

  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/api/')) return;
    // 'close' comes after 'finish' for a complete reply (already logged by then), alone
    // for one the client cut off.
    reply.raw.once('close', () => log(req, reply, !reply.raw.writableFinished));
  });

  if (audit) {
    app.addHook('preHandler', async (req, reply) => {
      if (!changes(req) || audit.writable()) return;
      return reply.code(503).header('retry-after', '30').send(body503('the audit trail cannot be written at the moment, so no change is made; try again later'));
    });
    app.addHook('onSend', async (req, reply, payload) => {
      // Only a change that was made: refusals and errors (4xx, 5xx) changed nothing.
      if (!changes(req) || logged.has(req) || reply.statusCode >= 300) return payload;
      log(req, reply, false);
      try {
        await withinTime(audit.flush(), AUDIT_WAIT_MS);
        return payload;
      } catch (err) {
        const status = reply.statusCode;
        reply.code(503).header('retry-after', '30').type('application/json; charset=utf-8');
        return JSON.stringify(body503(`the change was made (it answered ${status}), but the audit trail could not record it: ${(err as Error).message}; the record is kept in memory and written once the trail can be written again`));
      }
    });
  }

  app.addHook('onResponse', async (req, reply) => {
    if (req.url.startsWith('/api/')) log(req, reply, false);
  });
}

function withinTime(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not written within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
