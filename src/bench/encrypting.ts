import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { importKeys } from '../keys/import.js';
import { SmimeTrust } from '../keys/smime-trust.js';
import { FileKeyStore } from '../keys/store.js';
import { pgpRecipientKey, smimeRecipient, type KeyPair } from './keys.js';
import { dataDirOf } from './postern-config.js';
import { startPostern } from './postern.js';
import type { Setup } from './setup.js';
import { LOAD_DOMAIN } from './source.js';
import { CHECK_ADDRESS } from './verify-encrypted.js';

export interface EncryptingSetup {
  setup: Setup;
  method: 'pgp' | 'smime';
  /** The recipient's private half, to check that what leaves is encrypted to it. */
  recipient: KeyPair;
}

/**
 * Postern whose policy allows one method only (pgp or smime, else defer), with a key
 * for the load's recipient domain imported into its store before it starts, the way an
 * operator imports a partner gateway's domain key. The same key also serves the
 * check address, whose domain is routed to the capture server.
 */
export async function startEncrypting(method: 'pgp' | 'smime', dir: string, port: number, sinkPort: number, capturePort: number, workers: string): Promise<EncryptingSetup> {
  mkdirSync(dir, { recursive: true });
  let recipient: KeyPair;
  let caPem: string | undefined;
  if (method === 'pgp') recipient = await pgpRecipientKey(CHECK_ADDRESS);
  else ({ cert: recipient, caPem } = smimeRecipient(CHECK_ADDRESS));
  const caFile = join(dir, 'bench-ca.pem');
  if (caPem) writeFileSync(caFile, caPem);

  // The fs backend's store, as the gateway opens it (src/keys/open-store.ts).
  const store = new FileKeyStore(join(dataDirOf(dir), 'keys'));
  await store.open();
  const results = await importKeys(store, recipient.publicKey, { address: CHECK_ADDRESS, domain: LOAD_DOMAIN, smimeTrust: caPem ? SmimeTrust.fromPem([caPem]) : undefined });
  const stored = results.filter((r) => !r.refused && r.kind === method);
  if (!stored.length) throw new Error(`postern-${method}: the bench's ${method} key was not imported: ${results.map((r) => r.refused).join('; ') || 'nothing found in it'}`);

  const setup = await startPostern({
    name: `postern-${method}`,
    dir,
    port,
    sinkPort,
    workers,
    methods: [method],
    ...(caPem ? { smimeTrust: [caFile] } : {}),
    routes: { [CHECK_ADDRESS.split('@')[1] as string]: `127.0.0.1:${capturePort}` },
  });
  return { setup, method, recipient };
}
