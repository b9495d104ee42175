import { randomBytes } from 'node:crypto';

/**
 * A new portal message id: 16 base64url characters (about 95 random bits). Never one that
 * starts with '-': an admin typing `postern portal revoke <id>` would have it read as an
 * option.
 */
export function newMessageId(): string {
  for (;;) {
    const id = randomBytes(12).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** A new link token: 256 random bits. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}
