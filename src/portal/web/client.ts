import type { FastifyRequest } from 'fastify';

/**
 * "From where", for the audit trail of portal events: the client's address (behind a
 * proxy: from X-Forwarded-For when portal.trustProxy trusts it) and its user agent,
 * bounded and without control characters (it is whatever the client sent).
 */
export function clientOf(req: FastifyRequest): { ip: string; userAgent?: string | undefined } {
  const ua = req.headers['user-agent'];
  return { ip: req.ip, userAgent: typeof ua === 'string' && ua ? ua.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 256) : undefined };
}
