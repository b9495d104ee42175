import { randomBytes } from 'node:crypto';

/** A new portal message id: 96 random bits, 16 base64url characters. */
export function newMessageId(): string {
  return randomBytes(12).toString('base64url');
}

/** A new link token: 256 random bits. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}
