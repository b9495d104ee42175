import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARCHIVE_EVENTS } from '../../src/archive/events.js';
import { AUDITED_EVENTS } from '../../src/events/audit-events.js';
import { EVENTS } from '../../src/events/logger.js';
import { WEBHOOK_EVENTS } from '../../src/events/webhooks-events.js';
import { REDIS_EVENTS } from '../../src/queue/redis/events.js';

const README = readFileSync(join(process.cwd(), 'README.md'), 'utf8');

/** The lines of one `## ` section (up to the next one). */
function section(title: string): string[] {
  const lines = README.split('\n');
  const start = lines.indexOf(`## ${title}`);
  if (start === -1) throw new Error(`README has no section "## ${title}"`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  return lines.slice(start + 1, end === -1 ? undefined : end);
}

/** The cells of a Markdown table row (`|` inside backticks is not a separator here). */
const cells = (row: string) => row.split('|').slice(1, -1).map((c) => c.trim());

/** `a` / `b` in a cell: every backticked code. */
const codes = (cell: string) => [...cell.matchAll(/`([a-z][a-z0-9-]*\.[a-z0-9.-]+)`/g)].map((m) => m[1] as string);

/** The README's "Log events" table: event code → its level cell. */
function logTable(): Map<string, string> {
  const rows = section('Log events').filter((l) => l.startsWith('| `'));
  const table = new Map<string, string>();
  for (const row of rows) {
    const [event, level] = cells(row) as [string, string];
    for (const code of codes(event)) table.set(code, level);
  }
  return table;
}

const allCodes = [...Object.values(EVENTS), ...Object.values(ARCHIVE_EVENTS), ...Object.values(REDIS_EVENTS)];

describe('the README tells the truth about event codes', () => {
  it('the log event table lists every code in EVENTS, ARCHIVE_EVENTS and REDIS_EVENTS, and no other', () => {
    const table = logTable();
    expect([...table.keys()].filter((c) => !allCodes.includes(c as never)).sort(), 'in the README but not in the code').toEqual([]);
    expect(allCodes.filter((c) => !table.has(c)).sort(), 'in the code but not in the README').toEqual([]);
  });

  it('the webhooks table is WEBHOOK_EVENTS', () => {
    const rows = section('Audit trail, tracking and webhooks').filter((l) => /^\| `[a-z.-]+` \| `[a-z.-]+` \|/.test(l));
    const pairs = rows.flatMap((row) => {
      const c = cells(row).map((x) => x.replace(/`/g, ''));
      // Two pairs a row: name, code, (blank), name, code.
      return [[c[1], c[0]], [c[4], c[3]]].filter(([code]) => code);
    });
    expect(Object.fromEntries(pairs)).toEqual(WEBHOOK_EVENTS);
  });

  it('every audited pattern names events that exist', () => {
    for (const p of AUDITED_EVENTS) {
      const known = p.endsWith('.*') ? allCodes.some((c) => c.startsWith(p.slice(0, -1))) : allCodes.includes(p as never);
      expect(known, p).toBe(true);
    }
  });
});
