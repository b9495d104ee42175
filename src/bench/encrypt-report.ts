import { columns, fmt, modeLabel, sizeLabel, type Row } from './report.js';

const LABELS: Record<string, string> = { postern: 'plain (postern)', 'postern-pgp': 'OpenPGP (postern-pgp)', 'postern-smime': 'S/MIME (postern-smime)' };

/** "50 KB: plain vs PGP vs S/MIME": medians of the encryption runs, ratios to plain. */
export function formatEncryptTable(rows: Row[]): string {
  if (!rows.length) return '';
  const out: string[] = [];
  const groups = [...new Set(rows.map((r) => `${r.size}|${r.mode}`))];
  for (const g of groups) {
    const [size, mode] = [Number(g.split('|')[0]), g.split('|')[1] as Row['mode']];
    const group = rows.filter((r) => r.size === size && r.mode === mode);
    const plain = group.find((r) => r.setup === 'postern');
    const header = ['setup', 'msgs/s', '÷ plain', 'p50 ms', 'p99 ms', 'CPU ms/msg', 'CPU − plain'];
    const body = group.map((r) => [
      LABELS[r.setup] ?? r.setup,
      fmt(r.msgsPerSec),
      fmt(plain ? r.msgsPerSec / plain.msgsPerSec : undefined, 2),
      fmt(r.p50Ms, 1),
      fmt(r.p99Ms, 1),
      fmt(r.cpuMsPerMsg, 2),
      fmt(plain ? r.cpuMsPerMsg - plain.cpuMsPerMsg : undefined, 2),
    ]);
    out.push(`${sizeLabel(size)}, sessions ${modeLabel(mode)}: plain vs PGP vs S/MIME\n\n${columns(header, body, 1)}\n`);
  }
  return out.join('\n');
}
