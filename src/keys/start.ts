import { readFile } from 'node:fs/promises';
import type { SharedCache } from '../common/shared-cache.js';
import type { PosternConfig } from '../config/schema.js';
import type { Logger } from '../events/logger.js';
import { CrlSet } from './crl.js';
import { KeyLookup } from './lookup.js';
import { pemCertificates } from './material.js';
import { openKeyStore } from './open-store.js';
import type { KeyStore } from './store.js';

export interface KeyParts {
  store: KeyStore;
  lookup: KeyLookup;
  /** The S/MIME trust anchors (PEM, one certificate each) and CRL check, for imports. */
  smimeTrust: string[];
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
 * The key store (under <dataDir>/keys, or on the shared Redis with queue.backend: redis)
 * and the lookup that reads it and discovers keys (wiring only). The caller closes
 * parts.store when done.
 */
export async function startKeys(config: PosternConfig, dataDir: string, resolve: (host: string) => Promise<string[]>, logger: Logger, cache?: SharedCache): Promise<KeyParts> {
  const smimeTrust = await readCertificateFiles(config.keys.smimeTrust, 'keys.smimeTrust');
  const httpsTrust = await readCertificateFiles(config.delivery.tls.trust, 'delivery.tls.trust');
  // Last: nothing after it can fail and leave its Redis connection open.
  const store = await openKeyStore(config, dataDir, logger);
  const crls = new CrlSet(config.keys.smimeCrls, smimeTrust);
  const lookup = new KeyLookup({
    keys: config.keys,
    store,
    resolve,
    httpsTrust,
    smimeTrust,
    revoked: crls.check,
    log: logger.child({ component: 'keys' }),
    cache,
  });
  return { store, lookup, smimeTrust, crls };
}
