import { randomBytes } from 'node:crypto';
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { encryptEntry, FileChangedDuringRewrap, readItemHeader, rewrapFile } from '../../src/archive/item-file.js';
import { tempDir } from './helpers.js';

/** What happens right after rewrapFile copies a file (a writer appending, a full disk): set per test. */
const hooks = vi.hoisted(() => ({ afterCopy: undefined as ((src: string, dst: string) => Promise<void>) | undefined }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const copyFile: typeof real.copyFile = async (src, dst, mode) => {
    await real.copyFile(src, dst, mode);
    await hooks.afterCopy?.(String(src), String(dst));
  };
  return { ...real, default: { ...real, copyFile }, copyFile };
});

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
afterEach(() => {
  hooks.afterCopy = undefined;
});

const k1 = { id: 'k1', key: randomBytes(32) };
const k2 = { id: 'k2', key: randomBytes(32) };

/** A segment of two entries under k1. */
async function segment(): Promise<{ dir: string; path: string; offsets: number[] }> {
  const dir = tempDir();
  dirs.push(dir);
  const path = join(dir, 'journal-0.0.seg');
  const offsets: number[] = [];
  const pieces: Buffer[] = [];
  let at = 0;
  for (const id of ['01AAAAAAAAAAAAAAAA', '01BBBBBBBBBBBBBBBB']) {
    const e = encryptEntry(id, k1, Buffer.from(`message ${id}`));
    e.dataKey.fill(0);
    offsets.push(at);
    for (const p of e.pieces) at += p.length;
    pieces.push(...e.pieces);
  }
  await writeFile(path, Buffer.concat(pieces));
  return { dir, path, offsets };
}

describe('rewrapFile', () => {
  it('re-wraps the entries of a file that nothing else touches, and leaves no copy', async () => {
    const { dir, path, offsets } = await segment();
    expect(await rewrapFile(path, offsets, [k1], k2)).toBe(2);
    for (const o of offsets) expect((await readItemHeader(path, o)).keyId).toBe('k2');
    expect(await readdir(dir)).toEqual(['journal-0.0.seg']);
  });

  it('does not replace a file appended to while it worked on a copy: what was appended stays, and the copy goes', async () => {
    const { dir, path, offsets } = await segment();
    const appended = Buffer.from('an entry a running gateway appended meanwhile');
    hooks.afterCopy = (src) => appendFile(src, appended);
    const before = await readFile(path);
    await expect(rewrapFile(path, offsets, [k1], k2)).rejects.toBeInstanceOf(FileChangedDuringRewrap);
    expect(await readFile(path)).toEqual(Buffer.concat([before, appended]));
    expect(await readdir(dir)).toEqual(['journal-0.0.seg']);
  });

  it('removes its copy when writing it fails part way (a full disk)', async () => {
    const { dir, path, offsets } = await segment();
    hooks.afterCopy = () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    const before = await readFile(path);
    await expect(rewrapFile(path, offsets, [k1], k2)).rejects.toThrow(/ENOSPC/);
    expect(await readFile(path)).toEqual(before);
    expect(await readdir(dir)).toEqual(['journal-0.0.seg']);
  });
});
