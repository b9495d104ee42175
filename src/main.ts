import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startOperations, type Operations } from './api/operations.js';
import { openJournal, startRetentionJob } from './archive/index.js';
import type { Adopted } from './cluster/adopt-orphans.js';
import { closeInTurn } from './common/close-in-turn.js';
import type { PosternConfig } from './config/schema.js';
import { DeliveryDns } from './deliver/dns.js';
import { DomainSender } from './deliver/domain-sender.js';
import { ConnectionPool } from './deliver/pool.js';
import { Router } from './deliver/router.js';
import { Settler } from './deliver/settle.js';
import { VariantBuilder } from './deliver/variant.js';
import { DeliveryWorker } from './deliver/worker.js';
import { EVENTS, type Logger } from './events/logger.js';
import { startEventSinks } from './events/start-sinks.js';
import { Ingress } from './ingress/server.js';
import { Harvester } from './keys/harvest.js';
import { startKeys } from './keys/start.js';
import { keylessAvailability } from './policy/availability.js';
import { Planner } from './policy/planner.js';
import { tlsForecaster } from './tls/forecast.js';
import { configuredPolicyFile } from './policy/configured.js';
import { inlinePolicyOf } from './policy/section.js';
import { PolicyStore } from './policy/store.js';
import { portalReach } from './portal/reach.js';
import { startPortalStorage, startPortalWeb } from './portal/start.js';
import { createProtector } from './protect/protector.js';
import type { QueueBackend } from './queue/backend.js';
import { openQueue } from './queue/open-queue.js';
import { DkimSigner } from './sign/dkim.js';
import { loadDkimKeys } from './sign/dkim-keys.js';
import { loadOrCreateCertificate } from './tls/dev-certificate.js';
import { MtaSts } from './tls/mta-sts.js';


export interface Gateway {
  smtp: { host: string; port: number }[];
  /** The portal's HTTPS port, when the portal is on. */
  portalPort?: number | undefined;
  queue: QueueBackend;
  /** Readiness, metrics and the admin side of the queue (for the admin listener, src/api). */
  operations: Operations;
  dataDir: string;
  /** Writes the audit records still held in memory (they are written every audit.flushInterval anyway). */
  flushEvents(): Promise<void>;
  /** Graceful stop: refuse new work, finish what is in flight until the deadline. */
  stop(): Promise<{ clean: boolean }>;
}

export interface GatewayOptions {
  /** Spool shard this process owns (src/cluster); 0 for a single process. */
  shard?: number;
  /** What moved in from shards no process owns any more (a single process only). */
  adopted?: Adopted | undefined;
  /**
   * Runs once everything but the SMTP listener is up, before it binds (a single
   * process's admin listener, src/cli/start.ts). A failure stops the start; what the
   * hook opened, its caller closes.
   */
  beforeSmtp?: ((operations: Operations) => Promise<void>) | undefined;
}

/** Wiring only: builds each stage from config and connects them. */
export async function startGateway(config: PosternConfig, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  const dataDir = resolve(config.dataDir);
  const shard = options.shard ?? 0;
  // First, so the audit trail and webhooks see every event from the start on.
  const sinks = await startEventSinks(config, dataDir, shard, logger);
  logger.info({ event: EVENTS.start, pid: process.pid, dataDir, hostname: config.hostname, shard, adopted: options.adopted?.messages, adoptedWebhookEvents: options.adopted?.webhookEvents }, 'Postern starting');

  const cert = await loadOrCreateCertificate(dataDir, config.hostname, config.smtp.tls.cert, config.smtp.tls.key);
  if (cert.source !== 'configured') {
    logger.warn({ event: EVENTS.devCertificate, certPath: cert.certPath, created: cert.source === 'dev-created' }, 'using a self-signed development certificate; set smtp.tls.cert and smtp.tls.key for production');
  }
  // Identities and DKIM keys are checked before the queue opens: a bad one stops the start.
  const protector = await createProtector(config, logger.child({ component: 'protect' }));
  const signer = new DkimSigner(await loadDkimKeys(config), logger.child({ component: 'dkim' }));
  const journal = await openJournal(config, dataDir, logger, { shard });
  const { queue, cache, stsPolicies, redisReady } = await openQueue(config, dataDir, shard, logger);
  const dns = new DeliveryDns(config.delivery.dns.servers, config.delivery.dns.timeout);
  const keys = await startKeys(config, dataDir, (host) => dns.addresses(host), logger, cache).catch(async (err: Error) => {
    await queue.close();
    await journal?.close();
    await sinks.close();
    throw err;
  });

  const router = new Router(config.delivery, dns);
  const pool = new ConnectionPool(config, logger.child({ component: 'pool' }), cache);
  const policyFile = configuredPolicyFile(config.policy);
  const policies = new PolicyStore(policyFile && resolve(policyFile), logger.child({ component: 'policy' }), inlinePolicyOf(config.policy));
  await policies.start();
  const portal = await startPortalStorage(config, dataDir, queue, logger);
  // pgp and smime are available when the planner finds a key (it asks keys.lookup);
  // `postern policy explain` decides with the same availability.
  const reach = portalReach(config);
  const available = keylessAvailability(reach);
  const policyLog = logger.child({ component: 'policy' });
  const isSms = (rcpt: string) => Boolean(reach?.isSms(rcpt));
  // What the pool saw of each MX's TLS feeds decisions (and policy explain in this process).
  const forecast = tlsForecaster((domain) => router.route(domain), (host, port) => pool.capabilities.lookup(host, port));
  const planner = new Planner(queue, policies, () => policies.current().detectors, policyLog, { available, isSms, keys: keys.lookup, smimeMaxSize: config.protect.smime.maxSize, pgpMaxSize: config.protect.pgp.maxSize, forecast });
  const mtaSts = config.delivery.mtaSts.enabled
    ? new MtaSts({
        resolve: (name, type) => dns.resolve(name, type),
        trust: config.delivery.tls.trust.map((f) => readFileSync(f, 'utf8')),
        port: config.delivery.mtaSts.port,
        timeoutMs: config.delivery.mtaSts.timeout,
        cache,
        policies: stsPolicies,
      })
    : undefined;
  const deliveryLog = logger.child({ component: 'delivery' });
  const worker = new DeliveryWorker(config, queue, {
    planner,
    variants: new VariantBuilder(queue, () => planner.subjectTag(), deliveryLog, protector, signer),
    sender: new DomainSender(router, pool, deliveryLog, mtaSts),
    settler: new Settler(config, queue, deliveryLog),
    portal: portal?.delivery,
    harvest: config.keys.harvest ? { harvester: new Harvester(keys.store, keys.smimeTrust, logger.child({ component: 'keys' })), maxSize: config.protect.smime.maxSize } : undefined,
    journal,
  }, logger);
  // Connection counts are read at scrape time, once ingress exists.
  const operations = await startOperations({ config, dataDir, shard, queue, logger, connections: () => ingress.connections, journalReady: journal && (() => journal.ready()), redisReady, audit: sinks.audit, tlsForecast: forecast, policy: policies });
  const ingress = new Ingress({ config, logger, queue, cert, isReady: operations.health.gate });

  // SMTP listens last: the portal and the caller's listeners (a single process's admin
  // API) are bound first, so a port that cannot be had stops the start before a client
  // is greeted with 220 by a gateway about to exit.
  let web: { port: number; close(): Promise<void> } | undefined;
  let smtp: { host: string; port: number }[];
  try {
    web = portal ? await startPortalWeb(config, portal, queue, cert, logger) : undefined;
    await options.beforeSmtp?.(operations);
    smtp = await ingress.start();
  } catch (err) {
    // Nothing left half-started (the spool lock, the audit trail's last records): every
    // part is closed, even after one that fails to, and the start fails with its own error.
    await closeInTurn([
      () => web?.close(),
      () => operations.close(),
      () => ingress.close(),
      () => policies.close(),
      () => portal?.store.close(),
      () => keys.store.close(),
      () => queue.close(),
      () => journal?.close(),
      () => sinks.close(),
    ]).catch(() => undefined);
    throw err;
  }
  worker.start();
  // keys.expiring every day, whether or not mail is encrypted (unref'd: it never holds the process).
  const expiryTimer = protector.expiryWatch?.start();
  const stopRetention = journal ? startRetentionJob(config, dataDir, logger) : undefined;
  logger.info({ event: EVENTS.ready, smtp }, 'Postern ready');

  let stopping: Promise<{ clean: boolean }> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const deadline = Date.now() + config.shutdown.timeout;
      logger.info({ event: EVENTS.stopping, timeoutMs: config.shutdown.timeout }, 'stopping: new sessions get 421');
      ingress.beginDrain();
      // /readyz and postern_ready turn to not ready: a load balancer sends no new connections.
      operations.health.beginShutdown();
      clearInterval(expiryTimer);
      const [ingressIdle, deliveriesDone] = await Promise.all([ingress.waitIdle(deadline), worker.stop(deadline)]);
      const clean = ingressIdle && deliveriesDone;
      // Each part is closed even when one before it fails (a failing disk); the failure
      // is thrown once all are closed (cli/start.ts logs it).
      await closeInTurn([
        () => pool.closeAll(),
        () => policies.close(),
        () => web?.close(),
        () => portal?.store.close(),
        // What waitIdle left of the deadline: the whole stop takes shutdown.timeout at most.
        () => ingress.close(deadline),
        () => operations.close(),
        () => stopRetention?.(),
        () => keys.store.close(),
        () => queue.close(),
        () => journal?.close(),
        // Logged before the sinks close, so the audit trail records it.
        () => logger.info({ event: EVENTS.stopped, clean }, clean ? 'stopped' : 'stopped at the deadline; unfinished work stays queued'),
        () => sinks.close(),
      ]);
      return { clean };
    })());
  return { smtp, queue, operations, dataDir, stop, portalPort: web?.port, flushEvents: () => sinks.flush() };
}
