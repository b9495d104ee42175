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
    const e = err as Error & { code?: string; cause?: { code?: string } };
    return { error: e.code ?? e.cause?.code ?? (e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timeout' : e.message) };
  }
}

export const isDelivered = (r: PostResult) => r.status !== undefined && r.status >= 200 && r.status < 300;
