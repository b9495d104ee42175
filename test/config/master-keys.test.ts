import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import { openJournal } from '../../src/archive/journal.js';
import { cli, decisions, envelope, message, silent, tempDir } from '../archive/helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const key = () => randomBytes(32).toString('base64');

function problems(input: Record<string, unknown>): string[] {
  try {
    validateConfig({ hostname: 'gw.example.test', ...input });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('config: master key lists', () => {
  it('refuses a repeated id in archive.masterKeys and portal.masterKeys, naming the entry and the fix', () => {
    const archive = problems({ archive: { masterKeys: [{ id: 'k1', key: key() }, { id: 'k2', key: key() }, { id: 'k1', key: key() }] } });
    expect(archive).toEqual([expect.stringMatching(/^archive\.masterKeys\.2\.id: "k1" is already the id of entry 0: every key needs an id of its own \(give the new key a new id/)]);
    const portal = problems({ portal: { masterKeys: [{ id: 'p1', key: key() }, { id: 'p1', key: key() }] } });
    expect(portal).toEqual([expect.stringMatching(/^portal\.masterKeys\.1\.id: "p1" is already the id of entry 0/)]);
    // The same id in the two lists is two different settings: allowed.
    expect(problems({ archive: { masterKeys: [{ id: 'k1', key: key() }] }, portal: { masterKeys: [{ id: 'k1', key: key() }] } })).toEqual([]);
  });

  it('refuses a master key id longer than 64 characters (it would overflow every archive item header)', () => {
    expect(problems({ archive: { masterKeys: [{ id: 'k'.repeat(64), key: key() }] } })).toEqual([]);
    expect(problems({ archive: { masterKeys: [{ id: 'k'.repeat(65), key: key() }] } })).toEqual([
      'archive.masterKeys.0.id: at most 64 characters (it is stored with everything the key wraps); use a short name such as key-2026',
    ]);
    expect(problems({ portal: { masterKeys: [{ id: 'k'.repeat(300), key: key() }] } })).toEqual([expect.stringMatching(/^portal\.masterKeys\.0\.id: at most 64 characters/)]);
  });

  it('the longest id accepted still journals (the 512-byte item header has room for it)', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const config = validateConfig({ hostname: 'gw.example.test', dataDir, archive: { masterKeys: [{ id: 'k'.repeat(64), key: key() }] } });
    const journal = await openJournal(config, dataDir, silent);
    const e = envelope();
    await journal!.record({ envelope: e, decisions: decisions(e), body: message('long id', 'body') });
    expect(journal!.ready()).toBe(true);
    await journal!.close();
  });

  it('postern check-config exits 2 on a repeated archive key id instead of saying OK', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const file = join(dataDir, 'postern.yaml');
    writeFileSync(file, stringify({ hostname: 'gw.example.test', dataDir, archive: { masterKeys: [{ id: 'k1', key: key() }, { id: 'k1', key: key() }] } }));
    const r = await cli(['check-config', '--config', file]);
    expect(r.stderr).toContain('archive.masterKeys.1.id: "k1" is already the id of entry 0');
    expect(r.code).toBe(2);
  });
});
