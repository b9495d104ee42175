import cluster, { type Worker } from 'node:cluster';
import { resolve } from 'node:path';
import { ClusterSources } from '../api/cluster-ops.js';
import { startAdminListener, type AdminListener } from '../api/start.js';
import { loadArchiveKeys } from '../archive/keys.js';
import { ArchiveLayout } from '../archive/layout.js';
import type { PosternConfig } from '../config/schema.js';
import { auditGate } from '../api/sources.js';
import { catchStopSignals } from '../common/stop-signals.js';
import { EVENTS, eventBusOf, type Logger } from '../events/logger.js';
import { GatewayMetrics } from '../events/metrics.js';
import { startEventSinks } from '../events/start-sinks.js';
import { configuredPolicyFile } from '../policy/configured.js';
import { inlinePolicyOf } from '../policy/section.js';
import { PolicyStore } from '../policy/store.js';
import { loadMasterKeys } from '../portal/keys.js';
import { adoptOrphans } from './adopt-orphans.js';
import { loadOrCreateCertificate } from '../tls/dev-certificate.js';

export const SHARD_ENV = 'POSTERN_SHARD';

/** Messages a worker sends the primary over the cluster IPC channel. */
export type WorkerMessage = { type: 'ready'; smtp: { host: string; port: number }[] } | { type: 'failed'; error: string };

/**
 * A worker that died is started again after RESTART_MIN_MS; each time it dies again
 * before it says ready the wait doubles, up to RESTART_MAX_MS. A worker that cannot
 * start because something outside is down (Redis) is then tried every 30 s, not every
 * second, until it can.
 */
const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;

/**
 * How long past shutdown.timeout a stopping worker may take for its last writes before the
 * primary kills it.
 */
const WORKER_STOP_GRACE_MS = 5000;

/**
 * Runs `count` gateway processes on the same SMTP port (the kernel spreads the
 * connections: SCHED_NONE, no hand-off through this process). Each worker owns spool
 * shard n; a worker that dies is started again on the same shard, which recovers what it
 * had queued. A worker that cannot start is fatal only before the gateway was first ready
 * (port taken, spool locked: it would fail the same way again); afterwards the failure is
 * likely outside (Redis down while the other workers wait for it) and the worker is
 * retried with backoff while the others keep serving. The first SIGTERM/SIGINT is passed
 * on (as SIGTERM) and the primary exits once all have stopped; later ones and SIGHUP are
 * logged and ignored (src/common/stop-signals.ts). The admin listener runs here, asking the
 * ready workers over IPC (src/api/cluster-ops.ts), with the event sinks of its own
 * events (audit chain, webhooks, metrics).
 */
export async function runPrimary(config: PosternConfig, logger: Logger, count: number): Promise<void> {
  // Caught from the first moment: no signal may kill the primary by default, which
  // would take its workers (draining, or still starting) with it. One that comes while
  // it starts stops it once the workers are forked.
  const signals = catchStopSignals(logger, config.shutdown.timeout);
  const dataDir = resolve(config.dataDir);
  // Made once here so the workers do not race to create the development certificate
  // and the development master keys (each would otherwise write its own, and lose).
  await loadOrCreateCertificate(dataDir, config.hostname, config.smtp.tls.cert, config.smtp.tls.key);
  if (config.portal.enabled) await loadMasterKeys(config, dataDir);
  if (config.archive.enabled) await loadArchiveKeys(config, ArchiveLayout.forDataDir(dataDir));
  const adopted = await adoptOrphans(dataDir, count);
  // policy explain answers with the policy the workers decide with: the primary loads and
  // watches the same file (keeping the last good one, as they do); a broken one stops here.
  const policyFile = configuredPolicyFile(config.policy);
  const policies = new PolicyStore(policyFile && resolve(policyFile), logger.child({ component: 'policy' }), inlinePolicyOf(config.policy));
  if (config.admin.enabled) await policies.start();
  logger.info({ event: EVENTS.start, pid: process.pid, workers: count, adopted: adopted.messages, adoptedWebhookEvents: adopted.webhookEvents }, 'Postern primary starting workers');

  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const shards = new Map<Worker, number>();
  /** Workers that said ready: only they answer admin requests (one still starting would time out). */
  const ready = new Set<Worker>();
  let stopping = false;
  /** A worker's stop failed or it had to be killed: the primary then exits 1. */
  let stopWentWrong = false;
  /** Every worker said ready once: from then on no worker's failure stops the gateway. */
  let wasReady = false;
  /** Per shard, the wait before its next restart (reset when it says ready). */
  const restartWait = new Map<number, number>();
  /** Why a worker could not start, for the line logged when it exits. */
  const startErrors = new Map<Worker, string>();

  // The admin listener's own events (api.call, and what its calls change: keys.*,
  // portal.revoked, holds) are logged here, not in a worker: this process keeps a chain
  // of the audit trail of its own (<dataDir>/audit/primary), a webhook outbox of its own
  // (<dataDir>/webhooks/primary, or the shared one on Redis) and metrics the workers'
  // are summed with.
  const sinks = config.admin.enabled ? await startEventSinks(config, dataDir, 'primary', logger) : undefined;
  const own = new GatewayMetrics(eventBusOf(logger), { audit: sinks?.audit && (() => sinks.audit!.status()) }, { processMetrics: false });
  const live = () => [...ready].flatMap((worker) => (shards.has(worker) ? [{ worker, shard: shards.get(worker) as number }] : []));
  // shards: every configured one, so that a shard whose worker is being started again is
  // known to be silent (its messages may be there), not taken as one that has none.
  const sources = new ClusterSources(live, { shards: count, log: logger.child({ component: 'admin' }), own: own.registry, audit: sinks?.audit && auditGate(sinks.audit), policy: policies });
  let admin: AdminListener | undefined;
  try {
    admin = await startAdminListener(config, dataDir, sources, logger);
  } catch (err) {
    sources.close();
    policies.close();
    own.close();
    await sinks?.close();
    throw err;
  }
  const closeAdmin = async () => {
    await admin?.close().catch(() => undefined);
    sources.close();
    policies.close();
    own.close();
    await sinks?.close().catch(() => undefined);
  };

  const fork = (shard: number) => {
    let worker: Worker;
    try {
      worker = cluster.fork({ [SHARD_ENV]: String(shard) });
    } catch (err) {
      // Some spawn failures are thrown (ENOMEM), others reported as 'error' (below): either
      // way, tried again with backoff, not a crash of the primary while it recovers.
      restartLater(shard, 'worker process could not be started', { err: (err as Error).message });
      return;
    }
    shards.set(worker, shard);
    worker.on('error', (err: Error) => {
      // Without a listener, an 'error' on a worker ends the primary, and every worker with it.
      if (worker.process.pid === undefined) {
        // The process was never started (EAGAIN, EMFILE): no 'exit' follows, so this is
        // where it is started again, as one that died.
        workerGone(worker, null, null, err.message);
        return;
      }
      // A message it could not be sent (its IPC channel closed: it is exiting) or a signal
      // that could not reach it: if it is gone, its exit is logged and handled as any.
      logger.error({ event: EVENTS.workerExit, shard, pid: worker.process.pid, err: err.message }, 'error on a worker process');
    });
    worker.on('message', (msg: WorkerMessage) => {
      if (msg?.type === 'ready') {
        ready.add(worker);
        restartWait.delete(shard);
        if (ready.size === count) {
          wasReady = true;
          logger.info({ event: EVENTS.ready, smtp: msg.smtp, workers: count }, 'Postern ready');
        }
      }
      if (msg?.type !== 'failed') return;
      // Before the gateway was ever ready, a worker that cannot start (port taken, spool
      // locked, Redis unreachable) would fail the same way again: give up as a single
      // process would. Afterwards it exits and is started again with backoff.
      if (wasReady) startErrors.set(worker, msg.error);
      else giveUp(msg.error);
    });
  };

  /** Starts shard's worker again after the wait its backoff is at (which then doubles, until it says ready). */
  const restartLater = (shard: number, why: string, fields: Record<string, unknown>) => {
    const restartInMs = restartWait.get(shard) ?? RESTART_MIN_MS;
    restartWait.set(shard, Math.min(restartInMs * 2, RESTART_MAX_MS));
    logger.error({ event: EVENTS.workerExit, shard, ...fields, restartInMs }, `${why}; starting it again in ${restartInMs} ms`);
    // Not unref()ed: with every worker down and no admin listener, this timer is what
    // keeps the primary alive until the next try.
    setTimeout(() => !stopping && fork(shard), restartInMs);
  };

  /** A worker that exited, or whose process could not be started (`spawnError`). */
  const workerGone = (worker: Worker, code: number | null, signal: string | null, spawnError?: string) => {
    const shard = shards.get(worker);
    shards.delete(worker);
    ready.delete(worker);
    if (stopping) {
      // A worker whose stop failed (exit 1: stop-failed) or that was killed makes the whole stop one that went wrong.
      if (code !== 0) stopWentWrong = true;
      if (shards.size === 0 && process.exitCode !== 1) {
        logger.info({ event: EVENTS.stopped, clean: !stopWentWrong }, 'all workers stopped');
        void closeAdmin().finally(() => {
          logger.flush();
          setTimeout(() => process.exit(stopWentWrong ? 1 : 0), 50);
        });
      }
      return;
    }
    if (shard === undefined) return;
    const err = spawnError ?? startErrors.get(worker);
    startErrors.delete(worker);
    const why = spawnError ? 'worker process could not be started' : err ? 'worker could not start again' : 'worker exited unexpectedly';
    restartLater(shard, why, { code, signal, err });
  };
  cluster.on('exit', (worker, code, signal) => workerGone(worker, code, signal));

  const giveUp = (error: string) => {
    if (stopping) return;
    stopping = true;
    process.exitCode = 1;
    logger.fatal({ event: EVENTS.configError, err: error }, 'could not start');
    // On stderr too, as a single process says it (src/cli/start.ts).
    process.stderr.write(`postern: could not start: ${error}\n`);
    for (const worker of shards.keys()) worker.process.kill('SIGKILL');
    logger.flush();
    setTimeout(() => process.exit(1), 100);
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: EVENTS.stopping, signal, workers: shards.size }, 'stopping workers');
    for (const worker of shards.keys()) worker.process.kill('SIGTERM');
    // Each worker keeps to shutdown.timeout; one still running past it and a grace for its
    // last writes (audit trail, spool state) is hung (its event loop blocked, a close that
    // never returns) and would hold the primary, and the service manager's stop, for ever.
    // It is killed: its acknowledged mail is on its spool shard, taken up at the next start.
    const afterMs = config.shutdown.timeout + WORKER_STOP_GRACE_MS;
    setTimeout(() => {
      for (const [worker, shard] of shards) {
        stopWentWrong = true;
        logger.error({ event: EVENTS.workerKilled, shard, pid: worker.process.pid, afterMs }, 'worker still running past shutdown.timeout and its grace: killed');
        worker.process.kill('SIGKILL');
      }
    }, afterMs).unref();
    if (shards.size === 0) void closeAdmin().finally(() => process.exit(0));
  };
  signals.onStop(stop);

  // A stop asked for while the primary started has already run: no worker to start then.
  for (let shard = 0; shard < count && !stopping; shard++) fork(shard);
}
