import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { formatLargeRss } from '../../src/bench/large.js';
import { killGroup, peakRssMb, resetPeakRss, rssMb, startProcess } from '../../src/bench/proc.js';
import { formatTable, type Row } from '../../src/bench/report.js';

describe('bench: peak RSS figures', () => {
  it('resetPeakRss makes the next peak reading start from the current RSS', async () => {
    // A process that holds 150 MB for a moment, lets it go, then idles.
    const script = "let b = Buffer.alloc(150e6, 1); setTimeout(() => { b = null; global.gc(); process.stdout.write('freed\\n'); }, 300); setInterval(() => {}, 1000);";
    const child = startProcess(process.execPath, ['--expose-gc', '-e', script]);
    try {
      await once(child.stdout!, 'data');
      await new Promise((r) => setTimeout(r, 200));
      const pgid = child.pid as number;
      const before = Math.max(...peakRssMb(pgid));
      expect(before).toBeGreaterThan(150);
      expect(resetPeakRss([pgid])).toBe(true);
      const after = Math.max(...peakRssMb(pgid));
      expect(after).toBeLessThan(before - 100);
      expect(after).toBeLessThanOrEqual(Math.max(...rssMb(pgid)) + 5);
    } finally {
      killGroup(child, 'SIGKILL');
    }
  });

  it('the main table says what its peak RSS column is, and marks lifetime peaks', () => {
    const row: Row = { setup: 'postern', size: 5120, mode: 'reuse', msgsPerSec: 1000, cpuMsPerMsg: 1, peakRssMb: 120, rounds: 1 };
    expect(formatTable([row])).toMatch(/VmHWM reset before each run/);
    const lifetime = formatTable([{ ...row, peakRssSinceStart: true }]);
    expect(lifetime).toMatch(/120\*/);
    expect(lifetime).toMatch(/\* = since that process started/);
  });

  it('the 25 MB case prints the per-process peaks and the sampled total of all processes', () => {
    const line = formatLargeRss({ messages: 10, size: 25 * 1024 * 1024, seconds: 3, peakRssMbPerProcess: [150, 140, 60], peakRssMbSummed: 310 });
    expect(line).toContain('150 / 140 / 60 MB per process');
    expect(line).toContain('their sum, 350 MB');
    expect(line).toContain('all 3 gateway process(es) together: 310 MB');
  });
});
