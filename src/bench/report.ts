import type { RunResult } from './measure.js';
import type { Mode } from './options.js';

export interface Row {
  setup: string;
  size: number;
  mode: Mode;
  msgsPerSec: number;
  vsSink?: number | undefined;
  vsPostfix?: number | undefined;
  p50Ms?: number | undefined;
  p99Ms?: number | undefined;
  cpuMsPerMsg: number;
  peakRssMb?: number | undefined;
  /** Some run's peak RSS could not be reset first: the figure is a process-lifetime peak. */
  peakRssSinceStart?: boolean | undefined;
  rounds: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)] as number) + (s.length % 2 ? 0 : ((s[s.length / 2] as number) - (s[(s.length - 1) >> 1] as number)) / 2) : NaN;
};
const opt = (xs: (number | undefined)[]) => {
  const v = xs.filter((x): x is number => x !== undefined);
  return v.length ? median(v) : undefined;
};

/** Medians per setup × size × mode, with ratios to the sink ceiling and to Postfix. */
export function summarize(runs: RunResult[]): Row[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of runs) {
    const key = `${r.size}|${r.mode}|${r.setup}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const rows: Row[] = [...groups.values()].map((g) => ({
    setup: g[0]!.setup,
    size: g[0]!.size,
    mode: g[0]!.mode,
    msgsPerSec: median(g.map((r) => r.msgsPerSec)),
    p50Ms: opt(g.map((r) => r.p50Ms)),
    p99Ms: opt(g.map((r) => r.p99Ms)),
    cpuMsPerMsg: median(g.map((r) => r.cpuMsPerMsg)),
    peakRssMb: opt(g.map((r) => r.peakRssMb)),
    peakRssSinceStart: g.some((r) => r.peakRssSinceStart),
    rounds: g.length,
  }));
  for (const row of rows) {
    const peer = (setup: string) => rows.find((r) => r.setup === setup && r.size === row.size && r.mode === row.mode);
    const sink = peer('direct');
    const postfix = peer('postfix');
    row.vsSink = sink ? row.msgsPerSec / sink.msgsPerSec : undefined;
    row.vsPostfix = postfix ? row.msgsPerSec / postfix.msgsPerSec : undefined;
  }
  return rows;
}

/** A number for a table cell; – when there is none. */
export const fmt = (n: number | undefined, digits = 0) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits));
export const sizeLabel = (size: number) => (size >= 1024 ? `${Math.round(size / 1024)} KB` : `${size} B`);
export const modeLabel = (mode: Mode) => (mode === 'new' ? 'new per msg' : 'reused');

/** The main table: one line per size × mode × setup. */
export function formatTable(rows: Row[]): string {
  const f = fmt;
  const header = ['size', 'sessions', 'setup', 'msgs/s', '÷ sink', '÷ postfix', 'p50 ms', 'p99 ms', 'CPU ms/msg', 'peak RSS MB'];
  const body = rows.map((r) => [
    sizeLabel(r.size),
    modeLabel(r.mode),
    r.setup,
    f(r.msgsPerSec),
    f(r.vsSink, 2),
    f(r.vsPostfix, 2),
    f(r.p50Ms, 1),
    f(r.p99Ms, 1),
    f(r.cpuMsPerMsg, 2),
    `${f(r.peakRssMb, 0)}${r.peakRssSinceStart ? '*' : ''}`,
  ]);
  const note = rows.some((r) => r.peakRssSinceStart)
    ? '\npeak RSS: the largest single process of the setup. * = since that process started (its peak could not be reset before the run), so it may come from an earlier, heavier row.'
    : '\npeak RSS: the largest single process of the setup, during that row\'s runs (VmHWM reset before each run).';
  return `${columns(header, body, 3)}${note}`;
}

/** Aligned columns: the first `textColumns` left-aligned, numbers right-aligned. */
export function columns(header: string[], body: string[][], textColumns: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < textColumns ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
