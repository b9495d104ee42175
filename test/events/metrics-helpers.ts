import { spawnSync } from 'node:child_process';
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { expect } from 'vitest';
import { findProgram } from '../helpers/programs.js';

/** The value of one sample: labels must match exactly those given (absent sample = 0). */
export function sample(families: ParsedFamily[], name: string, labels: Record<string, string> = {}): number {
  const family = families.find((f) => f.name === name);
  const s = family?.metrics.find((m) => Object.keys(labels).length === Object.keys(m.labels ?? {}).length && Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!s) return 0;
  return Number(family?.type === 'HISTOGRAM' ? s.count : s.value);
}

const promtool = findProgram('promtool');
/** prom-client's own gauges named *_total: promtool's lint names them, they are not ours to rename. */
const UPSTREAM_LINT = /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;

/** Parsed by a real text-format parser, and checked by Prometheus's own promtool where installed. */
export function parseMetrics(text: string): ParsedFamily[] {
  if (promtool) {
    const r = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() && !UPSTREAM_LINT.test(l.trim()));
    expect(problems).toEqual([]);
  }
  return parsePrometheusTextFormat(text);
}
