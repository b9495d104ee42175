import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileDurably } from '../../src/common/durable-file.js';

describe('writeFileDurably', () => {
  it('concurrent writes of one file all succeed, the file holds one of them whole, no temp file stays', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-durable-'));
    const file = join(dir, 'record.json');
    // Large enough that the writes overlap on disk, different bytes each.
    const contents = Array.from({ length: 16 }, (_, i) => Buffer.alloc(256 * 1024, 0x41 + i));
    const results = await Promise.allSettled(contents.map((c) => writeFileDurably(file, c)));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const final = readFileSync(file);
    expect(contents.some((c) => c.equals(final))).toBe(true);
    expect(readdirSync(dir)).toEqual(['record.json']);
  });

  it('a write that fails leaves the old file as it was and no temp file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-durable-'));
    const file = join(dir, 'record.json');
    await writeFileDurably(file, 'old');
    await expect(writeFileDurably(file, 42 as unknown as string)).rejects.toThrow();
    expect(readFileSync(file, 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['record.json']);
  });
});
