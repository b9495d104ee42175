import { columns, fmt, modeLabel, sizeLabel, type Row } from './report.js';

/**
 * Two setups of the main table side by side, per size and mode: the throughput ratio
 * and both CPU costs (journaling on ÷ off; two instances on Redis ÷ one on the fs spool).
 * Empty when either setup did not run.
 */
export function formatPair(rows: Row[], title: string, a: string, b: string): string {
  const pairs = rows
    .filter((r) => r.setup === a)
    .map((ra) => ({ ra, rb: rows.find((r) => r.setup === b && r.size === ra.size && r.mode === ra.mode) }))
    .filter((p): p is { ra: Row; rb: Row } => p.rb !== undefined);
  if (!pairs.length) return '';
  const header = ['size', 'sessions', `${a} ÷ ${b}`, `CPU ms/msg ${a}`, b];
  const body = pairs.map(({ ra, rb }) => [sizeLabel(ra.size), modeLabel(ra.mode), fmt(ra.msgsPerSec / rb.msgsPerSec, 2), fmt(ra.cpuMsPerMsg, 2), fmt(rb.cpuMsPerMsg, 2)]);
  return `${title}:\n\n${columns(header, body, 2)}\n`;
}
