import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { openJournal } from '../../src/archive/journal.js';
import { allFiles, archiveConfig, cli, DAY, decisions, envelope, message, silent, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('files under items/ that are not archive entries', () => {
  it('verify names a copy an interrupted rotate-key left, and any other stray file; the purge that destroys the items removes the copy, and rotate-key removes one too', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { config, file } = archiveConfig(dataDir, { retention: { defaultDays: 30 } });
    const journal = (await openJournal(config, dataDir, silent))!;
    for (const s of ['one', 'two']) {
      const e = envelope({ receivedAt: Date.now() - 100 * DAY });
      await journal.record({ envelope: e, decisions: decisions(e), body: message(s, `body ${s}`) });
    }
    await journal.close();
    const [seg] = allFiles(join(dataDir, 'archive', 'items')).filter((f) => f.endsWith('.seg'));
    // What rotate-key leaves when it stops between its copy and the rename (a crash: its clean-up never ran).
    copyFileSync(seg!, `${seg}.rewrap`);
    const stray = join(dirname(seg!), 'notes.txt');
    writeFileSync(stray, 'not archive data');

    const before = await cli(['archive', 'verify', '-c', file]);
    expect(before.code).toBe(1);
    expect(before.stdout).toMatch(/items\/\d{4}\/\d{2}\/\d{2}\/journal-0\.0\.seg\.rewrap is a copy left by an interrupted postern archive rotate-key .*run postern archive rotate-key again, which removes it/);
    expect(before.stdout).toMatch(/items\/\d{4}\/\d{2}\/\d{2}\/notes\.txt is not an archive file/);

    // The purge destroys both items and removes their segment, and the copy with their keys:
    // left, it would keep what was just destroyed readable with the master key.
    const purge = await cli(['archive', 'purge', '-c', file]);
    expect(purge.stdout).toContain('2 destroyed');
    expect(existsSync(seg!)).toBe(false);
    expect(existsSync(`${seg}.rewrap`)).toBe(false);
    const afterPurge = await cli(['archive', 'verify', '-c', file]);
    expect(afterPurge.stdout).not.toContain('.rewrap');
    expect(afterPurge.stdout).toContain('notes.txt is not an archive file');

    // rotate-key removes a leftover copy as well, before it starts.
    const copy = join(dirname(seg!), 'journal-9.0.seg.rewrap');
    writeFileSync(copy, 'left by a crash');
    const raw = parse(readFileSync(file, 'utf8')) as { archive: { masterKeys: { id: string; key: string }[] } };
    const rotated = join(dataDir, 'rotated.yaml');
    writeFileSync(rotated, stringify({ ...raw, archive: { ...raw.archive, masterKeys: [{ id: 'k2', key: randomBytes(32).toString('base64') }, ...raw.archive.masterKeys] } }));
    const rotate = await cli(['archive', 'rotate-key', '--by', 'ops', '-c', rotated]);
    expect(rotate.stdout).toContain('re-wrapped 0 item key(s) with master key k2');
    expect(existsSync(copy)).toBe(false);

    unlinkSync(stray);
    const clean = await cli(['archive', 'verify', '-c', rotated]);
    expect(clean.stdout).toContain('OK');
    expect(clean.code).toBe(0);
  });
});
