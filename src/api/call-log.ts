import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { eventsDurable } from '../events/durable.js';
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

/**
 * A call the client hung up on before its reply goes on (authentication, the handler);
 * its line is logged when it answers. If it has not answered after this long, the line
 * is logged anyway, with status null.
 */
const UNANSWERED_MS = 60_000;

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
const REFUSALS = new Set([401, 403, 429]);

/** A call that changes something (retry, delete, revoke, import, hold): audited before its reply. */
const changes = (req: FastifyRequest) => !READS.has(req.method) && req.routeOptions.config.role !== undefined && req.routeOptions.config.role !== 'read-only';

/**
 * Which calls get an api.call line: every one under /api/, and a refusal (401, 403, 429)
 * on any other route that needs a role (/metrics with admin.metricsAuth), so that
 * guessing credentials there is logged, audited and counted like anywhere else.
 */
const logsCall = (req: FastifyRequest, status: number | null) =>
  req.url.startsWith('/api/') || (req.routeOptions.config.role !== undefined && status !== null && REFUSALS.has(status));

/** Why a call was refused for its credentials: none given (a client's first try), wrong ones (counted per address), or too many wrong ones. */
function authFailure(req: FastifyRequest, status: number | null): 'missing' | 'invalid' | 'rate-limited' | undefined {
  if (status === 429) return 'rate-limited';
  if (status !== 401) return undefined;
  return Authenticator.presented(req.headers as Credentials) ? 'invalid' : 'missing';
}

const body503 = (message: string) => ({ statusCode: 503, error: 'Service Unavailable', message });

/**
 * api.call: one line per request under /api/ (and per refusal on /metrics) — answered,
 * refused, or cut off by the client (aborted: true). A client that hangs up before the
 * reply does not stop the call: the line is logged once it answers, with who made it
 * and its real status (a change is still made, and still waits for the trail). One that
 * hangs up part way through a reply (an archive export it stopped reading) is logged
 * then: fastify's onResponse never runs for a reply that did not finish.
 *
 * A change made through the API is on disk in the audit trail, and its events in the
 * webhook outbox, before its reply leaves: while the trail cannot be written, changes
 * are refused with 503 before they are made, and a change whose records could not be
 * written in time answers 503 saying it was made.
 */
export function logApiCalls(app: FastifyInstance, ctx: ApiContext): void {
  const logged = new WeakSet<FastifyRequest>();
  /** Calls whose client hung up before the whole reply was sent. */
  const hungUp = new WeakSet<FastifyRequest>();
  const unanswered = new WeakMap<FastifyRequest, NodeJS.Timeout>();
  const log = (req: FastifyRequest, reply: FastifyReply, status: number | null = reply.statusCode) => {
    if (logged.has(req) || !logsCall(req, status)) return;
    logged.add(req);
    clearTimeout(unanswered.get(req));
    const aborted = hungUp.has(req);
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
      status,
      authFailure: authFailure(req, status),
      aborted: aborted || undefined,
      ip: req.ip,
    };
    if (aborted || (status !== null && REFUSALS.has(status))) ctx.log.warn(line, aborted ? 'admin API call cut off by the client' : 'admin API call refused');
    else ctx.log.info(line, 'admin API call');
  };
  const audit: AuditGate | undefined = ctx.sources.audit;

  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/api/') && req.routeOptions.config.role === undefined) return;
    // 'close' comes after 'finish' for a complete reply (onResponse logs that one).
    reply.raw.once('close', () => {
      if (reply.raw.writableFinished || logged.has(req)) return;
      hungUp.add(req);
      // Part of the reply was sent: nothing later runs for this call.
      if (reply.raw.headersSent) return log(req, reply);
      unanswered.set(req, setTimeout(() => log(req, reply, null), UNANSWERED_MS).unref());
    });
  });

  // Before the reply is written: a change waits here until it is durable; a call whose
  // client hung up is logged here, as nothing after this runs for it.
  app.addHook('onSend', async (req, reply, payload) => {
    // Only a change that was made: refusals and errors (4xx, 5xx) changed nothing.
    if (logged.has(req) || !changes(req) || reply.statusCode >= 300) {
      if (hungUp.has(req)) log(req, reply);
      return payload;
    }
    log(req, reply);
    try {
      // The webhook outbox never fails a call (eventsDurable gives up after a while, and
      // the outbox keeps its events in memory); the audit trail can.
      await Promise.all([audit && withinTime(audit.flush(), AUDIT_WAIT_MS), eventsDurable(ctx.log)]);
      return payload;
    } catch (err) {
      const status = reply.statusCode;
      reply.code(503).header('retry-after', '30').type('application/json; charset=utf-8');
      return JSON.stringify(body503(`the change was made (it answered ${status}), but the audit trail could not record it: ${(err as Error).message}; the record is kept in memory and written once the trail can be written again`));
    }
  });

  if (audit) {
    app.addHook('preHandler', async (req, reply) => {
      if (!changes(req) || audit.writable()) return;
      return reply.code(503).header('retry-after', '30').send(body503('the audit trail cannot be written at the moment, so no change is made; try again later'));
    });
  }

  app.addHook('onResponse', async (req, reply) => log(req, reply));
}

function withinTime(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not written within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
