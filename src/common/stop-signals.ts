import { EVENTS, type Logger } from '../events/logger.js';

export type StopSignal = 'SIGTERM' | 'SIGINT';

export interface StopSignals {
  /**
   * Sets what the first SIGTERM/SIGINT does, and runs it at once for one that came
   * before (a process catches signals from its first moment, before it can stop).
   */
  onStop(stop: (signal: StopSignal) => void): void;
}

/**
 * Catches the signals a gateway process (single, worker or cluster primary) gets, for
 * as long as it runs. The first SIGTERM or SIGINT starts the graceful stop. Any further
 * one is logged and ignored: a second Ctrl-C or an impatient service manager must not
 * kill the process by default mid-transaction (leaving the spool lock behind, or, on a
 * primary, taking the draining workers with it); shutdown.timeout already bounds the
 * stop, and `kill -9` remains for whoever really means it. SIGHUP (a closed terminal, a
 * reflexive "reload") is logged and ignored too: there is nothing to reload on it, the
 * policy file is watched and reloaded by itself, and Node's default would kill the process.
 */
export function catchStopSignals(logger: Logger, timeoutMs: number): StopSignals {
  let stop: ((signal: StopSignal) => void) | undefined;
  let first: StopSignal | undefined;
  /** When the stop that is under way must be over; set once it has actually begun. */
  let deadline: number | undefined;
  const begin = (signal: StopSignal) => {
    deadline = Date.now() + timeoutMs;
    stop?.(signal);
  };
  const onStopSignal = (signal: StopSignal) => {
    if (first) return alreadyStopping(logger, signal, deadline);
    first = signal;
    if (stop) begin(signal);
  };
  process.on('SIGTERM', () => onStopSignal('SIGTERM'));
  process.on('SIGINT', () => onStopSignal('SIGINT'));
  process.on('SIGHUP', () => logger.info({ event: EVENTS.sighupIgnored, signal: 'SIGHUP' }, 'SIGHUP ignored: nothing is reloaded on it (the policy file reloads by itself when it changes); SIGTERM stops'));
  return {
    onStop(fn) {
      stop = fn;
      if (first) begin(first);
    },
  };
}

function alreadyStopping(logger: Logger, signal: StopSignal, deadline: number | undefined): void {
  if (deadline === undefined) {
    logger.warn({ event: EVENTS.alreadyStopping, signal }, `${signal} ignored: a stop is already asked for; it begins once start-up is over`);
    return;
  }
  const leftMs = Math.max(0, deadline - Date.now());
  logger.warn({ event: EVENTS.alreadyStopping, signal, deadline: new Date(deadline).toISOString(), leftMs }, `${signal} ignored: the stop is already under way and ends by its deadline (shutdown.timeout), in ${leftMs} ms at most`);
}
