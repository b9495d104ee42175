import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ItemRecord, RecordBody } from '../../src/archive/chain-record.js';
import { walkChain } from '../../src/archive/chain-walk.js';
import { ChainWriter } from '../../src/archive/chain-writer.js';
import { ArchiveLayout } from '../../src/archive/layout.js';
import { findProgram } from '../helpers/programs.js';
import { tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const prlimit = findProgram('prlimit');
const chattr = findProgram('chattr');

/** This test process's soft file size limit: a write past it fails with EFBIG, root included. */
const limitFileSize = (soft: string) => execFileSync(prlimit as string, ['--pid', String(process.pid), `--fsize=${soft}:`]);

/**
 * The append-only attribute: appends still work, but the file cannot be truncated
 * (EPERM), as a disk that fails the repair would. Setting it needs root
 * (CAP_LINUX_IMMUTABLE) and a file system that has it: probed once.
 */
const appendOnly = (path: string, on: boolean) => execFileSync(chattr as string, [on ? '+a' : '-a', path]);
function canMakeAppendOnly(): boolean {
  if (!chattr) return false;
  const probe = join(tempDir('postern-chattr-'), 'probe');
  writeFileSync(probe, '');
  try {
    appendOnly(probe, true);
    appendOnly(probe, false);
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error("this test needs 'chattr +a' to work (root, and a file system with the append-only attribute)");
    return false;
  } finally {
    rmSync(join(probe, '..'), { recursive: true, force: true });
  }
}

const item = (n: number, metaBytes = 64): RecordBody<ItemRecord> => ({ type: 'item', id: `Q${n}`, receivedAt: Date.now(), size: 1, file: `items/x/Q${n}.item`, offset: 0, iv: 'iv', tag: 'tag', meta: randomBytes(metaBytes).toString('base64') });

// Skipped only on a developer machine without prlimit/chattr or a file system without the
// append-only attribute; under CI=true findProgram and canMakeAppendOnly throw.
describe.skipIf(!prlimit || !canMakeAppendOnly())('chain writer: a failed batch that cannot be cut off the index', () => {
  it('refuses every later append until reopened; nothing acknowledged is cut; the reopened chain has the torn line cut off and verifies', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const layout = ArchiveLayout.forDataDir(dataDir);
    const keys = [{ id: 'k1', key: randomBytes(32) }];
    const log = layout.chainLog('journal-0');
    const w = await ChainWriter.open(layout.chainsDir, 'journal-0', keys);
    for (let n = 1; n <= 3; n++) await w.append(item(n));
    const acknowledged = readFileSync(log);

    // The batch's write stops part way (EFBIG 100 bytes on), and cutting it off fails (EPERM).
    appendOnly(log, true);
    try {
      limitFileSize(String(acknowledged.length + 100));
      try {
        await expect(w.append(item(4, 4096))).rejects.toThrow(/EFBIG/);
      } finally {
        limitFileSize('unlimited');
      }
      expect(statSync(log).size).toBe(acknowledged.length + 100);
      // The disk works again, but the writer no longer knows where its records end.
      await expect(w.append(item(5))).rejects.toThrow(/could not be repaired.*restart/);
      await expect(Promise.all([w.append(item(6)), w.append(item(7))])).rejects.toThrow(/could not be repaired/);
      expect(readFileSync(log).subarray(0, acknowledged.length).equals(acknowledged)).toBe(true);
      expect(statSync(log).size).toBe(acknowledged.length + 100);
    } finally {
      appendOnly(log, false);
    }
    await w.close();

    // After the disk is fixed, a restart cuts the torn line off and goes on from record 3.
    const again = await ChainWriter.open(layout.chainsDir, 'journal-0', keys);
    expect(readFileSync(log).equals(acknowledged)).toBe(true);
    expect(again.lastSeq).toBe(3);
    expect((await again.append(item(8))).seq).toBe(4);
    await again.close();
    const walk = await walkChain({ layout, keys }, 'journal-0');
    expect(walk.problem).toBeUndefined();
    expect(walk.records).toBe(5);
  });
});
