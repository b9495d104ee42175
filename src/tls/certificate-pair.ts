import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { readPemOrFile } from '../common/pem-or-file.js';

/** The settings a certificate and its key came from (smtp.tls.cert, ...), named in every problem. */
export interface CertificateSettings {
  cert: string;
  key: string;
}

/**
 * A configured certificate (chain, leaf first) and its private key, read and checked as
 * a TLS listener will use them. Node's own check says only "key values mismatch", and
 * only when the listener is made: the gateway was then half-started and the log line
 * named no setting. Used by every listener at start and by check-config (src/cli/
 * startup-checks.ts), so the two say the same thing. The values are never echoed.
 */
export async function readCertificatePair(settings: CertificateSettings, cert: string, key: string): Promise<{ cert: string; key: string }> {
  const pair = { cert: await readPemOrFile(settings.cert, cert), key: await readPemOrFile(settings.key, key) };
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pair.cert);
  } catch (err) {
    throw new Error(`${settings.cert}: not a PEM certificate (${(err as Error).message})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pair.key);
  } catch (err) {
    throw new Error(`${settings.key}: not a PEM private key without a passphrase (${(err as Error).message})`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new Error(`${settings.key}: does not match ${settings.cert} (the key is not the one the certificate was issued for: give the pair that belongs together)`);
  }
  // What else OpenSSL refuses when the listener is made (a key too small for its security level, ...).
  try {
    createSecureContext(pair);
  } catch (err) {
    throw new Error(`${settings.cert}, ${settings.key}: not usable for TLS: ${(err as Error).message}`);
  }
  return pair;
}
