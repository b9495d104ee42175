import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { openJournal } from '../../src/archive/journal.js';
import { archiveConfig, cli, decisions, envelope, message, silent, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('postern archive rotate-key', () => {
  it('re-wraps every item key with the new first key; afterwards the old key is no longer needed', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { config, file } = archiveConfig(dataDir);
    const journal = await openJournal(config, dataDir, silent);
    for (const s of ['one', 'two']) {
      const e = envelope();
      await journal!.record({ envelope: e, decisions: decisions(e), body: message(s, `body ${s}`) });
    }
    await journal!.close();
    const raw = parse(readFileSync(file, 'utf8')) as { archive: { masterKeys: { id: string; key: string }[] } };
    const [old] = raw.archive.masterKeys;
    const k2 = { id: 'k2', key: randomBytes(32).toString('base64') };
    const write = (keys: { id: string; key: string }[]) => {
      const f = join(dataDir, `keys-${keys.map((k) => k.id).join('-')}.yaml`);
      writeFileSync(f, stringify({ ...raw, archive: { ...raw.archive, masterKeys: keys } }));
      return f;
    };
    const onlyNew = write([k2]);
    const before = await cli(['archive', 'verify', '-c', onlyNew]);
    expect(before.code).toBe(1);
    expect(before.stdout).toContain('master key k1 is not configured');

    const r = await cli(['archive', 'rotate-key', '--by', 'ops', '-c', write([k2, old!])]);
    expect(r.stdout).toContain('re-wrapped 2 item key(s) with master key k2');
    const after = await cli(['archive', 'verify', '-c', onlyNew]);
    expect(after.stdout).toContain('OK');
    expect(after.code).toBe(0);
    expect((await cli(['archive', 'search', '--keyword', 'body two', '-c', onlyNew])).stdout).toContain('"two"');
    const admin = readFileSync(join(dataDir, 'archive', 'chains', 'admin.log'), 'utf8');
    expect(admin).toMatch(/"type":"rotate","keyId":"k2","count":2,"actor":"ops"/);
  });
});
