import { listenError } from '../common/listen-error.js';
import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { loadOrCreateCertificate } from '../tls/dev-certificate.js';
import { isLoopbackHost } from './loopback.js';
import { createAdminServer } from './server.js';
import type { AdminSources } from './sources.js';

export interface AdminListener {
  host: string;
  port: number;
  tls: boolean;
  close(): Promise<void>;
}

/**
 * Starts the admin listener on admin.listen (undefined when admin.enabled is false). A
 * port that cannot be had fails the start, as smtp.listen does: monitoring that silently
 * is not there is worse than a gateway that says why it will not start.
 */
export async function startAdminListener(config: PosternConfig, dataDir: string, sources: AdminSources, logger: Logger): Promise<AdminListener | undefined> {
  const { admin } = config;
  if (!admin.enabled) return undefined;
  // The admin's own certificate, else the SMTP one (configured, or the development one).
  const tls = admin.tls.enabled
    ? admin.tls.cert && admin.tls.key
      ? await loadOrCreateCertificate(dataDir, config.hostname, admin.tls.cert, admin.tls.key, { cert: 'admin.tls.cert', key: 'admin.tls.key' })
      : await loadOrCreateCertificate(dataDir, config.hostname, config.smtp.tls.cert, config.smtp.tls.key)
    : undefined;
  const log = logger.child({ component: 'admin' });
  const app = await createAdminServer({ config, dataDir, log, sources }, tls);
  const { host, port } = admin.listen;
  let address: string;
  try {
    address = await app.listen({ host, port });
  } catch (err) {
    await app.close();
    throw listenError('admin.listen', host, port, err as Error);
  }
  const bound = app.server.address();
  const actual = typeof bound === 'object' && bound ? bound.port : port;
  log.info({ event: EVENTS.adminListen, host, port: actual, tls: Boolean(tls), url: address }, 'admin API listening');
  // admin.cleartext: refuse stops this at config validation; warn says it here, at every start.
  if (!tls && !isLoopbackHost(host)) {
    log.warn({ event: EVENTS.adminCleartext, host, port: actual }, 'the admin API listens on a non-loopback address without TLS: API keys and passwords cross the network in clear (set admin.tls.enabled, or admin.cleartext: refuse to forbid this)');
  }
  return { host, port: actual, tls: Boolean(tls), close: () => app.close() };
}
