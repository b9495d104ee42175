import type { FastifyRequest } from 'fastify';
import { EVENTS, type Logger } from '../../events/logger.js';
import { clientOf } from './client.js';


export interface FailureAnswer {
  status: number;
  title: string;
  text: string;
}

/** Pages for the 4xx fastify and its plugins give (a body too large, one that cannot be read). */
const CLIENT_ERRORS: Record<number, Omit<FailureAnswer, 'status'>> = {
  400: { title: 'Request refused', text: 'The form did not arrive as this site sends it. Go back, reload the page and try again.' },
  413: { title: 'Too large', text: 'What you sent is larger than this site accepts. Send less at once.' },
  415: { title: 'Request refused', text: 'The form did not arrive as this site sends it. Go back, reload the page and try again.' },
};
const OTHER_CLIENT_ERROR = { title: 'Request refused', text: 'This request cannot be answered. Go back, reload the page and try again.' };

/** An address the portal has no page for (a mistyped or cut-off link). */
export const NOT_FOUND: FailureAnswer = { status: 404, title: 'Page not found', text: 'There is no page at this address. Check the link you followed, or ask the sender to send it again.' };

/**
 * What the visitor is told of a failed request: a 4xx keeps its status, with a page that
 * says what to do; anything else is a 500 page with nothing of its cause (the visitor may
 * be anyone, and a store's error names its files).
 */
export function failureAnswer(err: unknown): FailureAnswer {
  const status = (err as { statusCode?: unknown } | undefined)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return { status, ...(CLIENT_ERRORS[status] ?? OTHER_CLIENT_ERROR) };
  return { status: 500, title: 'Something went wrong', text: 'Something went wrong, try again later.' };
}

/**
 * The operator's side of a 500: the route's pattern (never the URL: /m/ and /r/ links
 * carry their token), where the request came from, and the error. Never the form's
 * fields or a message's content, which the error does not carry either: stores name
 * their files by hashes of ids and tokens.
 */
export function logFailure(log: Logger, req: FastifyRequest, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  log.error(
    { event: EVENTS.portalError, method: req.method, route: req.routeOptions.url ?? '(no route)', ...clientOf(req), err: e.message.slice(0, 500), code: typeof code === 'string' ? code : undefined, stack: e.stack },
    'portal request failed',
  );
}
