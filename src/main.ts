import { existsSync, readFileSync } from 'node:fs';
import { MtaSts } from './tls/mta-sts.js';
import type { MethodAvailability } from './policy/evaluate.js';
import { startPortalStorage, startPortalWeb } from './portal/start.js';
import { resolve } from 'node:path';
import { Planner } from './policy/planner.js';
import { PolicyStore } from './policy/store.js';

const DEFAULT_POLICY_FILE = 'config/policy.yaml';
import type { PosternConfig } from './config/schema.js';
import { DeliveryDns } from './deliver/dns.js';
import { ConnectionPool } from './deliver/pool.js';
import { Router } from './deliver/router.js';
import { DeliveryWorker } from './deliver/worker.js';
import { EVENTS, type Logger } from './events/logger.js';
import { Ingress } from './ingress/server.js';
import { FsSpool } from './queue/fs/spool.js';
import type { QueueBackend } from './queue/backend.js';
import { loadOrCreateCertificate } from './tls/dev-certificate.js';
import { spoolShardDir } from './queue/fs/shards.js';

export interface Gateway {
  smtp: { host: string; port: number }[];
  /** The portal's HTTPS port, when the portal is on. */
  portalPort?: number | undefined;
  queue: QueueBackend;
  /** Graceful stop: refuse new work, finish what is in flight until the deadline. */
  stop(): Promise<{ clean: boolean }>;
}

export interface GatewayOptions {
  /** Spool shard this process owns (src/cluster); 0 for a single process. */
  shard?: number;
}

/** Wiring only: builds each stage from config and connects them. */
export async function startGateway(config: PosternConfig, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  const dataDir = resolve(config.dataDir);
  const shard = options.shard ?? 0;
  logger.info({ event: EVENTS.start, pid: process.pid, dataDir, hostname: config.hostname, shard }, 'Postern starting');

  const cert = await loadOrCreateCertificate(dataDir, config.hostname, config.smtp.tls.cert, config.smtp.tls.key);
  if (cert.source !== 'configured') {
    logger.warn({ event: EVENTS.devCertificate, certPath: cert.certPath, created: cert.source === 'dev-created' }, 'using a self-signed development certificate; set smtp.tls.cert and smtp.tls.key for production');
  }

  const queue = new FsSpool(spoolShardDir(dataDir, shard), { commitWindowMs: config.queue.commitWindow });
  const { recovered, cleaned } = await queue.open();
  logger.info({ event: EVENTS.queueRecovered, recovered, cleaned }, 'queue opened');

  const dns = new DeliveryDns(config.delivery.dns.servers, config.delivery.dns.timeout);
  const router = new Router(config.delivery, dns);
  const pool = new ConnectionPool(config, logger.child({ component: 'pool' }));
  const policyFile = config.policy.file ?? (existsSync(DEFAULT_POLICY_FILE) ? DEFAULT_POLICY_FILE : undefined);
  const policies = new PolicyStore(policyFile && resolve(policyFile), logger.child({ component: 'policy' }));
  await policies.start();
  const portal = await startPortalStorage(config, dataDir, queue, logger);
  const available: MethodAvailability = (method, rcpt) =>
    method === 'tls' ? !portal?.delivery.isSms(rcpt) : method === 'portal' ? Boolean(portal?.delivery.canServe(rcpt)) : false;
  const planner = new Planner(queue, policies, () => policies.current().detectors, logger.child({ component: 'policy' }), available, (rcpt) => Boolean(portal?.delivery.isSms(rcpt)));
  const mtaSts = config.delivery.mtaSts.enabled
    ? new MtaSts({
        resolve: (name, type) => dns.resolve(name, type),
        trust: config.delivery.tls.trust.map((f) => readFileSync(f, 'utf8')),
        port: config.delivery.mtaSts.port,
        timeoutMs: config.delivery.mtaSts.timeout,
      })
    : undefined;
  const worker = new DeliveryWorker(config, queue, router, pool, planner, logger, mtaSts, portal?.delivery);
  const ingress = new Ingress({ config, logger, queue, cert });

  let smtp: { host: string; port: number }[];
  try {
    smtp = await ingress.start();
  } catch (err) {
    await ingress.close();
    await queue.close();
    throw err;
  }
  worker.start();
  const web = portal ? await startPortalWeb(config, portal, queue, cert, logger) : undefined;
  logger.info({ event: EVENTS.ready, smtp }, 'Postern ready');

  let stopping: Promise<{ clean: boolean }> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const deadline = Date.now() + config.shutdown.timeout;
      logger.info({ event: EVENTS.stopping, timeoutMs: config.shutdown.timeout }, 'stopping: new sessions get 421');
      ingress.beginDrain();
      const [ingressIdle, deliveriesDone] = await Promise.all([ingress.waitIdle(deadline), worker.stop(deadline)]);
      await pool.closeAll();
      policies.close();
      await web?.close();
      await ingress.close();
      await queue.close();
      const clean = ingressIdle && deliveriesDone;
      logger.info({ event: EVENTS.stopped, clean }, clean ? 'stopped' : 'stopped at the deadline; unfinished work stays queued');
      return { clean };
    })());
  return { smtp, queue, stop, portalPort: web?.port };
}
