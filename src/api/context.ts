import type { FastifyRequest } from 'fastify';
import type { PosternConfig } from '../config/schema.js';
import type { Logger } from '../events/logger.js';
import type { AdminSources } from './sources.js';

/** What every route module gets. */
export interface ApiContext {
  config: PosternConfig;
  /** Absolute: the routes read the same files as the CLI (archive, keys, portal store). */
  dataDir: string;
  log: Logger;
  sources: AdminSources;
}

/**
 * An error fastify answers with this status and `{ statusCode, error, message }`, and
 * with `headers` (e.g. Retry-After on a 503): fastify's error handler sets an error's
 * `headers` on the reply.
 */
export function apiError(statusCode: number, message: string, headers?: Record<string, string>): Error {
  return Object.assign(new Error(message), { statusCode }, headers && { headers });
}

/** Who made the call, as recorded in logs and in the records a change writes (holds, revocations). */
export const actorOf = (req: FastifyRequest): string => req.principal?.name ?? 'anonymous';
