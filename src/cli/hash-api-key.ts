import { randomBytes } from 'node:crypto';
import { hashPassword } from '../ingress/password-hash.js';

/** API keys are long random strings, not passwords a person picks. */
const MIN_KEY_LENGTH = 32;
/**
 * Lighter scrypt than for passwords (N=2^15, 32 MiB): a 256-bit random key cannot be
 * guessed whatever the cost, and every first call of a key pays for the check.
 */
const API_KEY_PARAMS = { N: 2 ** 15, r: 8, p: 1 };

/**
 * postern hash-api-key [--generate]: the scrypt hash for admin.apiKeys[].hash, of a key
 * read on stdin, or of a new random key that is printed once (only the hash is kept).
 */
export async function hashApiKeyCommand(opts: { generate?: boolean }): Promise<void> {
  let key: string;
  if (opts.generate) {
    key = `pst_${randomBytes(32).toString('base64url')}`;
  } else {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    key = Buffer.concat(chunks).toString('utf8').trim();
  }
  if (key.length < MIN_KEY_LENGTH) {
    process.stderr.write(`an API key must be at least ${MIN_KEY_LENGTH} characters (or use --generate)\n`);
    process.exitCode = 2;
    return;
  }
  const hash = await hashPassword(key, API_KEY_PARAMS);
  process.stdout.write(opts.generate ? `key:  ${key}\nhash: ${hash}\n` : `${hash}\n`);
}
