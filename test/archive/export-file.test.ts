import { spawn } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportMbox } from '../../src/archive/export-mbox.js';
import { openJournal } from '../../src/archive/journal.js';
import type { ArchiveReader } from '../../src/archive/reader.js';
import type { SearchHit } from '../../src/archive/search.js';
import { archiveConfig, cli, decisions, envelope, message, silent, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

let dataDir: string;
let file: string;
beforeAll(async () => {
  dataDir = tempDir();
  dirs.push(dataDir);
  const c = archiveConfig(dataDir);
  file = c.file;
  const journal = (await openJournal(c.config, dataDir, silent))!;
  const e = envelope();
  await journal.record({ envelope: e, decisions: decisions(e), body: message('Lab results', 'SECRET-BODY-MARKER') });
  await journal.close();
});

/** A fresh folder for export files. */
function outDir(): string {
  const d = tempDir('postern-export-');
  dirs.push(d);
  return d;
}

const exportTo = (format: 'mbox' | 'zip', out: string, ...extra: string[]) => cli(['archive', 'export', '--format', format, '--out', out, '--participant', 'patient@example.net', ...extra, '-c', file]);
const mode = (p: string) => statSync(p).mode & 0o777;

describe('export files', () => {
  it('refuses an existing --out (and an existing mbox manifest) unless --force, which replaces it with a new file of mode 0600', async () => {
    const d = outDir();
    const out = join(d, 'case.mbox');
    writeFileSync(out, 'someone else\'s file');
    chmodSync(out, 0o666);
    const { ino } = statSync(out);
    const refused = await exportTo('mbox', out);
    expect(refused.stderr).toContain(`${out} already exists: nothing was written (pass --force to replace it)`);
    expect(refused.code).toBe(1);
    expect(readFileSync(out, 'utf8')).toBe('someone else\'s file');
    expect(readdirSync(d)).toEqual(['case.mbox']);

    const forced = await exportTo('mbox', out, '--force');
    expect(forced.code).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('SECRET-BODY-MARKER');
    expect(statSync(out).ino).not.toBe(ino);
    expect(mode(out)).toBe(0o600);
    expect(mode(`${out}.manifest.json`)).toBe(0o600);
    expect(readdirSync(d).sort()).toEqual(['case.mbox', 'case.mbox.manifest.json']);

    // The mbox gone, its manifest left: refused too (it would be replaced).
    rmSync(out);
    const manifestLeft = await exportTo('mbox', out);
    expect(manifestLeft.stderr).toContain(`${out}.manifest.json already exists`);
    expect(existsSync(out)).toBe(false);
  });

  it('never writes through a symlinked --out: refused, and with --force the link itself is replaced', async () => {
    const d = outDir();
    const target = join(d, 'elsewhere.zip');
    const out = join(d, 'case.zip');
    symlinkSync(target, out);
    const refused = await exportTo('zip', out);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('already exists');
    expect(existsSync(target)).toBe(false);

    expect((await exportTo('zip', out, '--force')).code).toBe(0);
    expect(lstatSync(out).isSymbolicLink()).toBe(false);
    expect(mode(out)).toBe(0o600);
    expect(existsSync(target)).toBe(false);
  });

  it('an export interrupted by SIGINT leaves no file: neither a partial clear-text mbox nor its temp file', async () => {
    const d = outDir();
    const out = join(d, 'case.mbox');
    // An export whose second message never comes (a slow read), so the signal arrives part way.
    const script = `
      const { exportMbox } = await import(${JSON.stringify(join(process.cwd(), 'dist', 'archive', 'export-mbox.js'))});
      setInterval(() => undefined, 60_000);
      const meta = (id) => ({ id, receivedAt: 0, mailFrom: 'dr@hospital.test', rcptTo: ['patient@example.net'], subject: 'Lab results' });
      const reader = { content: (entry) => entry === 1 ? Promise.resolve(Buffer.from('Subject: Lab results\\r\\n\\r\\nSECRET-BODY-MARKER\\r\\n')) : new Promise(() => undefined) };
      await exportMbox(reader, [{ entry: 1, meta: meta('01A') }, { entry: 2, meta: meta('01B') }], ${JSON.stringify(out)});
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    // Wait until the first message is on disk (whatever the file is called).
    const written = () => readdirSync(d).some((n) => statSync(join(d, n)).size > 0);
    while (!written()) {
      if (child.exitCode !== null) throw new Error(`the export ended before it was interrupted: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGINT');
    expect(await ended).toEqual({ code: null, signal: 'SIGINT' });
    expect(readdirSync(d)).toEqual([]);
  });

  it('an export that fails part way leaves neither the mbox nor its manifest, nor a temp file', async () => {
    const d = outDir();
    const out = join(d, 'case.mbox');
    const meta = (id: string) => ({ id, receivedAt: 0, mailFrom: 'dr@hospital.test', rcptTo: ['patient@example.net'], subject: 'Lab results' });
    const reader = { content: (entry: number) => (entry === 1 ? Promise.resolve(Buffer.from('Subject: x\r\n\r\nSECRET-BODY-MARKER\r\n')) : Promise.reject(new Error('item 01B could not be read'))) } as unknown as ArchiveReader;
    const hits = [1, 2].map((entry) => ({ entry, meta: meta(`01${entry}`) })) as unknown as SearchHit[];
    await expect(exportMbox(reader, hits, out)).rejects.toThrow('item 01B could not be read');
    expect(readdirSync(d)).toEqual([]);
  });
});
