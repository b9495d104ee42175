import { measure, type RunResult } from './measure.js';
import type { Mode } from './options.js';
import type { Setup } from './setup.js';
import type { Sink } from './sink.js';

/** One table's worth of runs: these setups, at these sizes, in these modes. */
export interface Matrix {
  label: RunResult['matrix'];
  setups: Setup[];
  sizes: number[];
  modes: Mode[];
  messages(size: number): number;
}

export interface RoundsSpec {
  matrices: Matrix[];
  /** Every setup running, for the idle CPU of those not measured. */
  all: Setup[];
  sink: Sink;
  sessions: number;
  log(line: string): void;
}

const idleOf = (spec: RoundsSpec, s: Setup) => spec.all.filter((x) => x !== s).flatMap((x) => x.pgids);

/**
 * Every relay gets the same untimed warm-up, at each size of its table, so the rounds
 * compare steady states: a gateway runs for months, and a cold Node process spends its
 * first seconds compiling.
 */
export async function warmUp(spec: RoundsSpec, messages: number): Promise<void> {
  if (messages <= 0) return;
  for (const m of spec.matrices) {
    for (const s of m.setups.filter((x) => x.name !== 'direct')) {
      for (const size of m.sizes) {
        await measure({ matrix: m.label, setup: s, idlePgids: idleOf(spec, s), sink: spec.sink, size, mode: m.modes[0] ?? 'new', messages, sessions: spec.sessions });
      }
    }
  }
  spec.log(`warm-up: ${messages} untimed messages per setup and size`);
}

/** Interleaved rounds: each round runs every table once, the setup order rotating. */
export async function runRounds(spec: RoundsSpec, rounds: number): Promise<RunResult[]> {
  const runs: RunResult[] = [];
  const width = Math.max(...spec.matrices.flatMap((m) => m.setups.map((s) => s.name.length)));
  for (let round = 1; round <= rounds; round++) {
    for (const m of spec.matrices) {
      // The order rotates each round so no setup always runs on a cooler machine.
      const order = m.setups.map((_, i) => m.setups[(i + round - 1) % m.setups.length] as Setup);
      for (const size of m.sizes) {
        for (const mode of m.modes) {
          for (const s of order) {
            const r = await measure({ matrix: m.label, setup: s, idlePgids: idleOf(spec, s), sink: spec.sink, size, mode, messages: m.messages(size), sessions: spec.sessions });
            runs.push(r);
            spec.log(`round ${round}  ${String(size).padStart(6)} B  ${mode.padEnd(5)}  ${s.name.padEnd(width)}  ${r.msgsPerSec.toFixed(0).padStart(6)} msgs/s  CPU ${r.cpuMsPerMsg.toFixed(2)} ms/msg`);
          }
        }
      }
    }
  }
  return runs;
}
