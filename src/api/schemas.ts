import type { FastifySchemaValidationError } from 'fastify';
import type { Role } from './auth.js';

/**
 * JSON schemas shared by the routes (fastify validates requests and serialises replies
 * with them) and the OpenAPI document (@fastify/swagger builds it from the same objects),
 * so the document cannot drift from what the API does.
 */

export const errorSchema = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' } },
  required: ['message'],
} as const;

/**
 * The error replies every authenticated route can give, besides its own: 429 after too
 * many failed authentications from the address, 503 when too many credential checks
 * wait (or, for a change, when the audit trail cannot record it).
 */
export const authErrors = { 401: errorSchema, 403: errorSchema, 429: errorSchema, 503: errorSchema } as const;

const recipientSchema = {
  type: 'object',
  properties: {
    rcpt: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'delivered', 'bounced'] },
    attempts: { type: 'integer' },
    nextAttemptAt: { type: 'string', format: 'date-time' },
    lastResponse: { type: 'string' },
    lastStatus: { type: 'string' },
    method: { type: 'string' },
    rule: { type: 'string' },
  },
  required: ['rcpt', 'status', 'attempts'],
} as const;

export const queueEntrySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    shard: { type: 'integer', description: 'spool shard (worker process) holding it' },
    receivedAt: { type: 'string', format: 'date-time' },
    mailFrom: { type: 'string' },
    size: { type: 'integer' },
    origin: { type: 'string', description: 'dsn, dsn-protected (a report about a message sent protected), portal-notice, portal-reply or portal-receipt for messages Postern made itself' },
    client: {
      type: 'object',
      properties: { ip: { type: 'string' }, helo: { type: 'string' }, tls: { type: 'string' }, authUser: { type: 'string' } },
    },
    recipients: { type: 'array', items: recipientSchema },
  },
  required: ['id', 'shard', 'receivedAt', 'mailFrom', 'size', 'recipients'],
} as const;

/** GET /api/v1/queue pages: at most this many entries an answer, this many when the caller does not say. */
const QUEUE_PAGE = { default: 100, max: 1000 } as const;

export const queueListQuery = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: QUEUE_PAGE.max, default: QUEUE_PAGE.default, description: `entries in this page (1–${QUEUE_PAGE.max})` },
    cursor: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,200}$', description: 'X-Postern-Next-Cursor of the previous page, unchanged; absent: from the oldest message' },
  },
  // A filter the route does not have (status=, domain=) must not quietly list everything.
  additionalProperties: false,
} as const;

/** The page's answer headers: the body stays the array of entries it always was. */
export const queueListHeaders = {
  'x-postern-next-cursor': { type: 'string', description: 'cursor of the next page; absent on the last page' },
  'x-postern-total': { type: 'integer', description: 'messages queued as the page was read (each may have several recipients)' },
  link: { type: 'string', description: 'RFC 8288 rel="next": this path with the next cursor and the same limit; absent on the last page' },
} as const;

/**
 * Validation errors of a query string, each naming its parameter: ajv says "querystring
 * must NOT have additional properties" for an unknown one, which leaves the caller
 * guessing which.
 */
export function queryErrors(errors: FastifySchemaValidationError[]): Error {
  const message = errors.map((e) => {
    if (e.keyword === 'additionalProperties') return `unknown query parameter ${String(e.params.additionalProperty)}`;
    return `${e.instancePath.replace(/^\//, '') || 'query'} ${e.message ?? 'is not valid'}`;
  });
  return new Error(message.join(', '));
}

export const queueChangeSchema = {
  type: 'object',
  properties: { id: { type: 'string' }, shard: { type: 'integer' }, recipients: { type: 'integer', description: 'pending recipients affected' } },
  required: ['id', 'recipients'],
} as const;

export const queueIdParams = {
  type: 'object',
  properties: { id: { type: 'string', pattern: '^[0-9A-Za-z]{10,40}$' } },
  required: ['id'],
} as const;

export const reasonSchema = { type: 'string', minLength: 1, maxLength: 500 } as const;

export const healthSchema = {
  type: 'object',
  properties: {
    ready: { type: 'boolean' },
    problems: {
      type: 'array',
      items: {
        type: 'object',
        properties: { check: { type: 'string' }, code: { type: 'integer' }, reason: { type: 'string' }, shard: { type: 'integer' } },
        required: ['check', 'reason'],
      },
    },
    checkedAt: { type: 'string', format: 'date-time' },
  },
  required: ['ready', 'problems'],
} as const;

/** A free-form object: trace, audit and archive reports pass through as their modules make them. */
export const anyObject = { type: 'object', additionalProperties: true } as const;

/** The security requirement of a route that needs a role, for its OpenAPI entry. */
const SECURED: Record<string, string[]>[] = [{ apiKey: [] }, { basic: [] }];

/**
 * Route options of an API route: the least role it needs (checked in server.ts), and its
 * schema with the security requirement and the 401/403 replies added.
 */
export function guarded<S extends { response?: Record<number, unknown> }>(role: Role, schema: S & Record<string, unknown>) {
  return {
    config: { role },
    schema: { ...schema, security: SECURED, description: `${(schema.description as string | undefined) ?? ''} Needs role ${role} or above.`.trim(), response: { ...authErrors, ...schema.response } },
  };
}
