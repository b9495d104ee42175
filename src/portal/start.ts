import { join } from 'node:path';
import { listenError } from '../common/listen-error.js';
import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import type { QueueBackend } from '../queue/backend.js';
import { readCertificatePair } from '../tls/certificate-pair.js';
import { PortalDelivery } from './deliver.js';
import { loadMasterKeys } from './keys.js';
import { openPortalStore } from './open-store.js';
import type { PortalStore } from './store.js';
import { createPortalServer } from './web/server.js';

/** Visitor sessions not logged in end after ten minutes; a minute more on disk at most. */
const RECORD_SWEEP_MS = 60_000;

export interface PortalParts {
  store: PortalStore;
  delivery: PortalDelivery;
}

/** The portal's storage and delivery step (wiring only). */
export async function startPortalStorage(config: PosternConfig, dataDir: string, queue: QueueBackend, logger: Logger): Promise<PortalParts | undefined> {
  if (!config.portal.enabled) return undefined;
  const log = logger.child({ component: 'portal' });
  const { keys, development } = await loadMasterKeys(config, dataDir);
  if (development) log.warn({ event: EVENTS.portalDevKey, file: join(dataDir, 'portal', 'master.key') }, 'portal: using a development master key; set portal.masterKeys for production');
  const store = await openPortalStore(config, dataDir, keys, log);
  return { store, delivery: new PortalDelivery(config, store, queue, log) };
}

/** The recipients' HTTPS app and the expiry sweep. */
export async function startPortalWeb(
  config: PosternConfig,
  parts: PortalParts,
  queue: QueueBackend,
  smtpCert: { cert: string; key: string },
  logger: Logger,
): Promise<{ port: number; close(): Promise<void> }> {
  const log = logger.child({ component: 'portal' });
  const t = config.portal.tls;
  const tls = t.cert && t.key ? await readCertificatePair({ cert: 'portal.tls.cert', key: 'portal.tls.key' }, t.cert, t.key) : smtpCert;
  const app = await createPortalServer({ config, store: parts.store, delivery: parts.delivery, queue, log, tls });
  const { host, port } = config.portal.listen;
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close();
    throw listenError('portal.listen', host, port, err as Error);
  }
  const actual = (app.server.address() as { port: number }).port;
  parts.delivery.setListenPort(actual);
  log.info({ event: EVENTS.portalListen, host, port: actual, publicUrl: parts.delivery.publicUrl() }, 'portal listening');
  const sweep = async () => {
    const gone = await parts.store.purgeExpired().catch(() => []);
    for (const id of gone) log.info({ event: EVENTS.portalExpired, portalId: id }, 'portal message expired and destroyed');
  };
  const timer = setInterval(() => void sweep(), 10 * 60_000);
  timer.unref();
  void sweep();
  // Sessions and link tokens past their end: any visitor's form makes a session (files
  // only; Redis expires them itself).
  const records = () => void parts.store.sweep().catch(() => undefined);
  const recordTimer = setInterval(records, RECORD_SWEEP_MS);
  recordTimer.unref();
  records();
  return {
    port: actual,
    async close() {
      clearInterval(timer);
      clearInterval(recordTimer);
      await app.close();
    },
  };
}
