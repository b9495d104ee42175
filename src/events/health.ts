import type { PosternConfig } from '../config/schema.js';
import type { Readiness } from '../ingress/server.js';
import { checkDisk, probeSpool, withinTime, type HealthProblem } from './health-probes.js';
import { EVENTS, type Logger } from './logger.js';

export type { HealthProblem } from './health-probes.js';

/** audit.failClosed: mail that could not be recorded is not taken. */
export const AUDIT_PROBLEM: HealthProblem = { check: 'audit', code: 451, reason: 'audit trail cannot be written (audit.failClosed)' };

/**
 * The process is stopping: new sessions get 421 (ingress drains). /readyz and
 * postern_ready say so, so a load balancer stops sending new connections here during
 * shutdown.timeout; ingress's own gate leaves it out, so transactions under way finish.
 */
const SHUTDOWN_PROBLEM: HealthProblem = { check: 'shutdown', code: 421, reason: 'shutting down: new sessions get 421' };

/** What /readyz reports: plain JSON, so worker processes can send it to the primary. */
export interface HealthReport {
  ready: boolean;
  problems: HealthProblem[];
  checkedAt: string;
}

export interface HealthOptions {
  /** A directory the spool writes new files in (probed by creating one there); none for Redis. */
  spoolDir?: string | undefined;
  /** Its disk is checked for free space. */
  dataDir: string;
  limits: PosternConfig['health'];
  logger: Logger;
  /** false while the journal sink cannot take items (the archive knows). */
  journalReady?: (() => boolean) | undefined;
  /** false while the shared Redis cannot be reached (queue.backend: redis). */
  redisReady?: (() => boolean) | undefined;
  /** false while the audit trail cannot be written (only given with audit.failClosed). */
  auditReady?: (() => boolean) | undefined;
}

/**
 * Readiness of one gateway process: the spool and disk are probed every
 * health.probeInterval (I/O, so never on the SMTP path); the journal and Redis hooks are
 * asked live. Ingress asks gate() at MAIL, RCPT and DATA, so mail is refused with 451/452
 * while a 250 could not be kept, and accepted again as soon as a probe succeeds.
 */
export class HealthMonitor {
  private probed: HealthProblem[] = [];
  private checkedAt = new Date();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private wasReady = true;
  private stopping = false;

  constructor(private readonly opts: HealthOptions) {}

  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.opts.limits.probeInterval);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Runs the probes now (a probe still running is joined, not doubled). */
  check(): Promise<void> {
    this.running ??= this.probe().finally(() => (this.running = undefined));
    return this.running;
  }

  /** From now on the process is stopping (see SHUTDOWN_PROBLEM). */
  beginShutdown(): void {
    this.stopping = true;
  }

  report(): HealthReport {
    const problems = this.mailProblems();
    if (this.stopping) problems.push(SHUTDOWN_PROBLEM);
    return { ready: problems.length === 0, problems, checkedAt: this.checkedAt.toISOString() };
  }

  /** What keeps a 250 from being kept: the probes' findings and the live hooks. */
  private mailProblems(): HealthProblem[] {
    const problems = [...this.probed];
    if (this.opts.journalReady && !this.opts.journalReady()) problems.push({ check: 'journal', code: 451, reason: 'journal sink unavailable' });
    if (this.opts.redisReady && !this.opts.redisReady()) problems.push({ check: 'redis', code: 451, reason: 'Redis unavailable' });
    if (this.opts.auditReady && !this.opts.auditReady()) problems.push(AUDIT_PROBLEM);
    return problems;
  }

  /** For ingress: the first problem decides the reply (452 when it is storage). The stop is ingress's own business (it drains). */
  readonly gate = (): Readiness => {
    const problems = this.mailProblems();
    const ready = problems.length === 0;
    const first = problems[0];
    // 421 is only ever the shutdown's, which mailProblems() leaves out.
    return ready || !first ? { ready: true, reason: 'ready' } : { ready: false, code: first.code === 452 ? 452 : 451, reason: problems.map((p) => p.reason).join('; ') };
  };

  private async probe(): Promise<void> {
    // A probe that hangs (storage stuck in fsync) must not hold readiness at its last value.
    const limit = Math.max(1000, this.opts.limits.probeInterval * 2);
    const { spoolDir } = this.opts;
    const results = await Promise.all([
      spoolDir ? withinTime(probeSpool(spoolDir), limit, 'spool') : undefined,
      withinTime(checkDisk(this.opts.dataDir, this.opts.limits), limit, 'disk'),
    ]);
    this.probed = results.filter((r): r is HealthProblem => r !== undefined);
    this.checkedAt = new Date();
    this.logChange();
  }

  private logChange(): void {
    // A stop is logged as such (gateway.stopping), not as a health change.
    const problems = this.mailProblems();
    const ready = problems.length === 0;
    if (ready === this.wasReady) return;
    this.wasReady = ready;
    if (ready) this.opts.logger.info({ event: EVENTS.healthReady }, 'ready again: accepting mail');
    else this.opts.logger.warn({ event: EVENTS.healthNotReady, problems }, `not ready, new mail gets 451/452: ${problems.map((p) => p.reason).join('; ')}`);
  }
}
