import { readFile } from 'node:fs/promises';
import type { SharedCache } from '../common/shared-cache.js';
import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { CrlSet } from './crl.js';
import { KeyLookup } from './lookup.js';
import { pemCertificates } from './material.js';
import { openKeyStore } from './open-store.js';
import { SmimeTrust } from './smime-trust.js';
import type { KeyStore } from './store.js';

export interface KeyParts {
  store: KeyStore;
  lookup: KeyLookup;
  /** The S/MIME trust anchors, configured intermediates and CRL check, for imports and harvest. */
  smimeTrust: SmimeTrust;
  crls: CrlSet;
}

/** The certificates of PEM files (bundles allowed); an unreadable file is a start-up error. */
export async function readCertificateFiles(files: string[], key: string): Promise<string[]> {
  const out: string[] = [];
  for (const f of files) {
    const certs = pemCertificates(await readFile(f, 'utf8').catch((err: Error) => Promise.reject(new Error(`${key}: cannot read ${f}: ${err.message}`))));
    if (!certs.length) throw new Error(`${key}: ${f} holds no PEM certificate`);
    out.push(...certs);
  }
  return out;
}

/**
 * keys.smimeTrust and keys.smimeIntermediates, read and parsed once, with the CRLs of
 * keys.smimeCrls. A certificate that cannot be read is left out with a warning (the
 * others still count); a bad CRL stops the start.
 */
export async function loadSmimeTrust(config: PosternConfig, logger: Logger): Promise<{ smimeTrust: SmimeTrust; crls: CrlSet }> {
  const trust = SmimeTrust.fromPem(await readCertificateFiles(config.keys.smimeTrust, 'keys.smimeTrust'), await readCertificateFiles(config.keys.smimeIntermediates, 'keys.smimeIntermediates'));
  for (const reason of trust.skipped) logger.warn({ event: EVENTS.keyTrustSkipped, reason }, 'S/MIME CA certificate left out');
  const crls = new CrlSet(config.keys.smimeCrls, trust.issuers, (reason) =>
    logger.warn({ event: EVENTS.keyCrlFailed, reason }, 'a changed CRL file could not be used; the CRLs read before stay in force'),
  );
  return { smimeTrust: trust.withRevocation(crls.check, () => crls.generation), crls };
}

/**
 * The key store (under <dataDir>/keys, or on the shared Redis with queue.backend: redis)
 * and the lookup that reads it and discovers keys (wiring only). The caller closes
 * parts.store when done.
 */
export async function startKeys(config: PosternConfig, dataDir: string, resolve: (host: string) => Promise<string[]>, logger: Logger, cache?: SharedCache): Promise<KeyParts> {
  const { smimeTrust, crls } = await loadSmimeTrust(config, logger);
  const httpsTrust = await readCertificateFiles(config.delivery.tls.trust, 'delivery.tls.trust');
  // Last: nothing after it can fail and leave its Redis connection open.
  const store = await openKeyStore(config, dataDir, logger);
  const lookup = new KeyLookup({
    keys: config.keys,
    store,
    resolve,
    httpsTrust,
    smimeTrust,
    log: logger.child({ component: 'keys' }),
    cache,
  });
  return { store, lookup, smimeTrust, crls };
}
