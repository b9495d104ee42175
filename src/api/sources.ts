import type { AuditTrail } from '../events/audit.js';
import type { HealthReport } from '../events/health.js';
import type { RunningPolicy } from '../policy/store.js';
import type { ForecastFn } from '../tls/forecast.js';
import type { QueueOps } from './queue-ops.js';

/**
 * What the admin listener reads from the gateway: the live queue, the metrics text and
 * readiness. In one process they come straight from it (src/api/operations.ts); in a
 * cluster the primary gathers them from its workers (src/api/cluster-ops.ts).
 */
export interface AdminSources {
  queue: QueueOps;
  /** Prometheus text exposition format (version 0.0.4). */
  metrics(): Promise<string>;
  readiness(): Promise<HealthReport>;
  /** The audit trail the listener's own events go to (none with audit.enabled: false). */
  audit?: AuditGate | undefined;
  /** The delivery's TLS capability forecast, for policy explain (a process that delivers only). */
  tlsForecast?: ForecastFn | undefined;
  /** The policy the gateway decides with (the last good one after a broken edit), for policy explain. */
  policy: RunningPolicy;
}

/** The audit trail as the admin listener sees it: a change made through the API is on disk before its reply. */
export interface AuditGate {
  /** Resolves once every record logged before the call is durable; rejects when the trail cannot write them. */
  flush(): Promise<void>;
  /** false while the trail's writes are failing (its records wait in memory). */
  writable(): boolean;
}

export const auditGate = (trail: AuditTrail): AuditGate => ({ flush: () => trail.flush(), writable: () => trail.status().writable });

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
