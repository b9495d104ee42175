import type { HealthReport } from '../events/health.js';
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
  /** The delivery's TLS capability forecast, for policy explain (a process that delivers only). */
  tlsForecast?: ForecastFn | undefined;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
