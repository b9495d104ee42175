import { createHash, createPrivateKey, sign } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { dkimBody, type BodyHasher } from 'mailauth/lib/dkim/body/index.js';
import { relaxedHeaders } from 'mailauth/lib/dkim/header/relaxed.js';
import { MessageParser } from 'mailauth/lib/dkim/message-parser.js';
import { formatSignatureHeaderLine } from 'mailauth/lib/tools.js';
import type { DkimKey } from './dkim-keys.js';
import { signedFields } from './oversign.js';

/**
 * DKIM-Signature header fields (RFC 6376, relaxed/relaxed; ed25519-sha256 per RFC 8463),
 * one per key, without line break, for a message whose header section ends with a blank
 * line (signable.ts). The message is read once, in chunks. mailauth parses, hashes,
 * canonicalizes and formats, as in its own signer; what is Postern's is the h= list
 * (oversign.ts) and t=, taken once: mailauth's signer stamps the time again after
 * signing, so a signature made across the turn of a second carried a t= other than the
 * one signed and failed everywhere.
 */
export async function dkimSignatures(message: Buffer | Readable, keys: DkimKey[], signTime = new Date()): Promise<string[]> {
  const digest = new MessageDigest([...new Set(keys.map(hashOf))]);
  await pipeline(Buffer.isBuffer(message) ? Readable.from([message], { objectMode: false }) : message, digest);
  if (!digest.headers || !digest.bodyHashes.size) throw new Error('the message has no blank line after its header section');
  const fields = signedFields(digest.headers.parsed);
  return keys.map((k) => {
    const bodyHash = digest.bodyHashes.get(hashOf(k)) as string;
    const options = { signingDomain: k.domain, selector: k.selector, algorithm: k.algorithm, canonicalization: 'relaxed/relaxed', bodyHash, signTime };
    const { canonicalizedHeader, dkimHeaderOpts } = relaxedHeaders('DKIM', fields, options);
    const key = createPrivateKey(k.privateKey);
    // RSA signs the canonical header with its hash; Ed25519 signs the SHA-256 hash of it (RFC 8463 §3).
    const b = k.algorithm.startsWith('ed25519') ? sign(null, createHash('sha256').update(canonicalizedHeader).digest(), key) : sign(hashOf(k), canonicalizedHeader, key);
    return formatSignatureHeaderLine('DKIM', { ...dkimHeaderOpts, b: b.toString('base64') }, true);
  });
}

/** The hash of an algorithm: sha256 of rsa-sha256 and ed25519-sha256. */
const hashOf = (k: DkimKey): string => k.algorithm.slice(k.algorithm.lastIndexOf('-') + 1);

/** Reads a message once: mailauth parses its header fields, and it hashes the body (relaxed) once per hash. */
class MessageDigest extends MessageParser {
  private readonly hashers = new Map<string, BodyHasher>();
  readonly bodyHashes = new Map<string, string>();

  constructor(private readonly hashes: string[]) {
    super();
  }

  override async messageHeaders(): Promise<void> {
    for (const hash of this.hashes) this.hashers.set(hash, dkimBody('relaxed', hash, false));
  }

  override async nextChunk(chunk: Buffer): Promise<void> {
    for (const hasher of this.hashers.values()) hasher.update(chunk);
  }

  override async finalChunk(): Promise<void> {
    for (const [hash, hasher] of this.hashers) this.bodyHashes.set(hash, hasher.digest('base64'));
  }
}
