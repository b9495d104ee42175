import cluster from 'node:cluster';
import { resolve } from 'node:path';
import type { Operations } from '../api/operations.js';
import { startAdminListener, type AdminListener } from '../api/start.js';
import { adoptOrphans } from '../cluster/adopt-orphans.js';
import { runPrimary, SHARD_ENV, type WorkerMessage } from '../cluster/primary.js';
import { workerCount } from '../cluster/worker-count.js';
import { listenAddresses } from '../config/listen-addresses.js';
import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import type { PosternConfig } from '../config/schema.js';
import { catchStopSignals } from '../common/stop-signals.js';
import { createLogger, EVENTS, type Logger } from '../events/logger.js';
import { startGateway, type Gateway } from '../main.js';
import { logCrashes } from './crash-log.js';
import { listenProblems } from './listen-probe.js';
import { startupProblems } from './startup-checks.js';

export async function startCommand(explicit: string | undefined): Promise<void> {
  const config = await configForStart(explicit);
  const workers = workerCount(config.workers);
  if (cluster.isPrimary && workers > 1) {
    // `process`, not `role`: api.call lines carry the caller's role.
    const logger = createLogger(config.log.level).child({ process: 'primary' });
    logCrashes(logger);
    await refuseUnavailableAddresses(config, logger);
    await runPrimary(config, logger, workers).catch((err: Error) => fail(logger, err));
    return;
  }
  const shard = cluster.isWorker ? Number(process.env[SHARD_ENV] ?? 0) : 0;
  const logger = cluster.isWorker ? createLogger(config.log.level).child({ shard }) : createLogger(config.log.level);
  logCrashes(logger);
  if (!cluster.isWorker) await refuseUnavailableAddresses(config, logger);
  // Caught from the first moment: a SIGTERM while the gateway starts must stop it like
  // any other, not kill the process by default.
  const signals = catchStopSignals(logger, config.shutdown.timeout);
  const dataDir = resolve(config.dataDir);
  // A single process owns shard 0 only: what an earlier run with more workers left in
  // other shards (queued messages, webhook events) moves into it first, as the primary
  // does for its workers.
  const adopted = cluster.isWorker ? undefined : await adoptOrphans(dataDir, 1).catch((err: Error) => fail(logger, err));
  // One process serves its own admin listener, bound before the SMTP listener (main.ts);
  // in a cluster the primary does (src/cluster/primary.ts).
  const started: { admin?: AdminListener | undefined } = {};
  const beforeSmtp = cluster.isWorker
    ? undefined
    : async (operations: Operations) => {
        started.admin = await startAdminListener(config, dataDir, operations.sources, logger);
      };
  const gateway = await startGateway(config, logger, { shard, adopted, beforeSmtp }).catch(async (err: Error) => {
    await started.admin?.close().catch(() => undefined);
    return fail(logger, err);
  });
  if (cluster.isWorker) process.send?.({ type: 'ready', smtp: gateway.smtp } satisfies WorkerMessage);
  signals.onStop((signal) => {
    logger.info({ event: EVENTS.stopping, signal }, 'signal received');
    void stopAndExit(gateway, started.admin, logger);
  });
}

/**
 * The config, and what start opens from it opened first with check-config's code
 * (startup-checks.ts): a problem is reported as check-config reports it, every one at
 * once and each naming its key, on stderr with exit code 2, before anything has
 * started. A worker skips the second part: its primary did it.
 */
async function configForStart(explicit: string | undefined): Promise<PosternConfig> {
  try {
    const file = configPathFrom(explicit);
    const config = loadConfigFile(file);
    if (cluster.isPrimary) {
      const { problems } = await startupProblems(config);
      if (problems.length) throw new ConfigError(file, problems);
    }
    return config;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/**
 * Every listener address is tried before anything is opened (listen-probe.ts): one that
 * cannot be had stops the start here, with nothing to undo, and no SMTP client greeted.
 */
async function refuseUnavailableAddresses(config: PosternConfig, logger: Logger): Promise<void> {
  const problems = await listenProblems(listenAddresses(config));
  if (problems.length) await fail(logger, new Error(problems.map((e) => e.message).join('; ')));
}

/**
 * The graceful stop, then the exit. A stop that fails (the audit trail or the webhook
 * outbox could not write its last records) is logged, and the admin listener is closed
 * all the same. The exit code is then 1 on purpose: records the gateway had taken are
 * lost, and the service manager (systemd, Docker) should show a stop that went wrong, not
 * a clean one. Queued mail is not at risk: it is on the spool. (A cluster's primary, itself
 * stopping, does not start a worker again whatever its exit code.)
 */
async function stopAndExit(gateway: Gateway, admin: AdminListener | undefined, logger: Logger): Promise<void> {
  let code = 0;
  const failed = (err: Error) => {
    code = 1;
    logger.error({ event: EVENTS.stopFailed, err: err.message }, 'graceful stop failed; the rest is closed all the same, then the process exits 1');
  };
  // The admin listener stays up while the gateway drains, so monitoring sees the stop.
  await gateway.stop().catch(failed);
  await admin?.close().catch(failed);
  logger.flush();
  setTimeout(() => process.exit(code), 50);
}

async function fail(logger: Logger, err: Error): Promise<never> {
  if (cluster.isWorker) {
    // The primary logs it once and stops the others.
    process.send?.({ type: 'failed', error: err.message } satisfies WorkerMessage);
    await new Promise((r) => setTimeout(r, 100));
    process.exit(1);
  }
  logger.fatal({ event: EVENTS.configError, err: err.message }, 'could not start');
  logger.flush();
  // On stderr too: the operator running `postern start` by hand, or reading the service
  // manager's status, sees why without reading the JSON log.
  process.stderr.write(`postern: could not start: ${err.message}\n`);
  await new Promise((r) => setTimeout(r, 100));
  process.exit(1);
}
