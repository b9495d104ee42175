import { availableParallelism } from 'node:os';

/**
 * How many gateway processes `workers: auto` runs: one per core but one. A gateway
 * process keeps one core busy with JavaScript; the kernel's TCP work, the thread pool's
 * fsyncs and the garbage collector's helper threads need the rest. On two cores a single
 * process (no primary) relayed as much as two workers with a primary in the benchmark, at
 * 40-45 % less CPU per message and less than half the memory (README "Benchmark").
 */
export function workerCount(setting: 'auto' | number, cores = availableParallelism()): number {
  return setting === 'auto' ? Math.max(1, cores - 1) : setting;
}
