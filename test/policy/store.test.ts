import { mkdtempSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/events/logger.js';
import { PolicyStore } from '../../src/policy/store.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, logger: createLogger('debug', { write: (l: string) => void lines.push(JSON.parse(l)) }) };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('policy hot reload', () => {
  it('applies a valid change, refuses a broken one and keeps the last good policy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-policy-'));
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, 'phiThreshold: 5\n');
    const { lines, logger } = capture();
    const store = new PolicyStore(file, logger);
    await store.start();
    expect(store.current().phiThreshold).toBe(5);

    // An editor that writes in place.
    writeFileSync(file, 'phiThreshold: 8\n');
    await until(() => store.current().phiThreshold === 8);

    // A broken change: refused, named, and the previous policy stays.
    writeFileSync(file, 'phiThreshold: lots\ndefaults: { methods: [telegram] }\n');
    await until(() => lines.some((l) => l.event === 'policy.rejected'));
    const rejected = lines.find((l) => l.event === 'policy.rejected') as { problems: string[] };
    expect(rejected.problems.join('\n')).toMatch(/phiThreshold/);
    expect(rejected.problems.join('\n')).toMatch(/defaults\.methods\.0/);
    expect(store.current().phiThreshold).toBe(8);

    // An editor that writes a temp file and renames it over the original.
    writeFileSync(join(dir, 'policy.yaml.tmp'), 'phiThreshold: 3\n');
    renameSync(join(dir, 'policy.yaml.tmp'), file);
    await until(() => store.current().phiThreshold === 3);
    store.close();
  });

  it('refuses to start on a broken policy file, naming the problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-policy-'));
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, 'rules: [{ id: x, match: { subjectTag: maybe }, action: {} }]\n');
    const store = new PolicyStore(file, capture().logger);
    await expect(store.start()).rejects.toThrow(/rules\.0\.match\.subjectTag/);
  });
});
