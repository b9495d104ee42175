import { request } from 'undici';
import { signBody } from './webhooks-sign.js';

export interface PostResult {
  /** The receiver's HTTP status, when it answered. */
  status?: number | undefined;
  /** Why there was no answer (refused, timed out, TLS). */
  error?: string | undefined;
}

export interface WebhookRequest {
  url: string;
  secret: string;
  event: string;
  deliveryId: string;
  body: string;
  timeoutMs: number;
}

/**
 * One POST of one delivery, signed at send time (the timestamp is the attempt's). The
 * response body is read and dropped: receivers only answer 2xx or not.
 */
export async function postWebhook(r: WebhookRequest): Promise<PostResult> {
  try {
    const res = await request(r.url, {
      method: 'POST',
      body: r.body,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Postern-Webhooks/1',
        'postern-event': r.event,
        'postern-delivery': r.deliveryId,
        'postern-signature': signBody(r.secret, r.body),
      },
      headersTimeout: r.timeoutMs,
      bodyTimeout: r.timeoutMs,
      signal: AbortSignal.timeout(r.timeoutMs),
    });
    await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    return { status: res.statusCode };
  } catch (err) {
    return { error: describeFailure(err, r.timeoutMs) };
  }
}

/** undici's own timeouts: the same limit as the signal's, whichever fires first. */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * Why a POST got no answer, for webhook.failed's `err` and the gave-up reason. A timeout
 * is named with its limit: AbortSignal.timeout's DOMException carries a numeric legacy
 * `code` (23, TIMEOUT_ERR) that means nothing in a log line. Otherwise the string code of
 * the error or of its cause (ECONNREFUSED, CERT_HAS_EXPIRED), else its message.
 */
export function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as Error & { code?: unknown; cause?: { code?: unknown } };
  const code = [e.code, e.cause?.code].find((c): c is string => typeof c === 'string');
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || (code && TIMEOUT_CODES.has(code))) return `timeout after ${timeoutMs} ms`;
  return code ?? e.message;
}

export const isDelivered = (r: PostResult) => r.status !== undefined && r.status >= 200 && r.status < 300;
