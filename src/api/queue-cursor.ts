import type { ListPosition } from '../queue/list-page.js';
import { apiError } from './context.js';

/** Raised when the form of a cursor changes, so that an old one is refused, not misread. */
const FORM = 1;

/**
 * The `cursor` of GET /api/v1/queue: the position of the last entry of the previous
 * page. It holds no state on the server (any worker, any instance, any restart reads it
 * the same) and is opaque to clients: base64url of JSON, whose form may change.
 */
export function encodeCursor(p: ListPosition): string {
  return Buffer.from(JSON.stringify([FORM, p.receivedAt, p.id])).toString('base64url');
}

/** The position a cursor stands for; 400 naming the parameter when it is not one this API gave. */
export function decodeCursor(text: string): ListPosition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (Array.isArray(parsed) && parsed.length === 3 && parsed[0] === FORM) {
    const [, receivedAt, id] = parsed as unknown[];
    if (Number.isSafeInteger(receivedAt) && (receivedAt as number) >= 0 && typeof id === 'string' && /^[0-9A-Za-z]{1,64}$/.test(id)) return { receivedAt: receivedAt as number, id };
  }
  throw apiError(400, 'cursor: not a cursor this API gave out; pass the X-Postern-Next-Cursor of the previous page unchanged, or leave cursor out to start from the oldest message');
}
