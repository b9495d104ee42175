import { open, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { PosternConfig } from '../config/schema.js';

/** One failed readiness check: 452 means storage is short (RFC 3463 4.3.1), 451 anything else. */
export interface HealthProblem {
  check: 'spool' | 'disk' | 'journal' | 'redis' | 'audit' | 'shutdown';
  code: 421 | 451 | 452;
  reason: string;
  /** In a cluster: the worker's spool shard that reported it. */
  shard?: number | undefined;
}

const PROBE_BYTES = Buffer.alloc(64, 0x2e);

/**
 * Creates, fsyncs and removes a small file in `dir`: the same steps a spool write takes,
 * so a read-only remount, a full disk, EIO or a directory that is gone all show here,
 * whoever the process runs as (root ignores permission bits, not these).
 */
export async function probeSpool(dir: string): Promise<HealthProblem | undefined> {
  const file = join(dir, `.health-probe-${process.pid}`);
  try {
    const fh = await open(file, 'w');
    try {
      await fh.write(PROBE_BYTES);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await unlink(file);
    return undefined;
  } catch (err) {
    return { check: 'spool', code: 451, reason: `spool not writable: ${(err as Error).message}` };
  }
}

const GB = 1024 ** 3;
const human = (bytes: number) => (bytes >= GB ? `${(bytes / GB).toFixed(1)} GB` : `${Math.round(bytes / 1024 ** 2)} MB`);

/**
 * Free space on the disk holding `dir`, as df counts it: the share used of what is
 * available to unprivileged users (the root reserve is not Postern's to spend).
 */
export async function checkDisk(dir: string, limits: PosternConfig['health']): Promise<HealthProblem | undefined> {
  let s;
  try {
    s = await statfs(dir);
  } catch (err) {
    return { check: 'disk', code: 451, reason: `cannot read free space of ${dir}: ${(err as Error).message}` };
  }
  const free = s.bavail * s.bsize;
  const usable = (s.blocks - s.bfree + s.bavail) * s.bsize;
  const usedPercent = usable > 0 ? ((usable - free) / usable) * 100 : 100;
  if (usedPercent >= limits.diskFullPercent) {
    return { check: 'disk', code: 452, reason: `disk holding ${dir} is ${usedPercent.toFixed(1)}% full (health.diskFullPercent ${limits.diskFullPercent}%)` };
  }
  if (free < limits.diskMinFree) {
    return { check: 'disk', code: 452, reason: `only ${human(free)} free on the disk holding ${dir} (health.diskMinFree ${human(limits.diskMinFree)})` };
  }
  return undefined;
}

/** `p`, or a problem when it has not settled within `ms` (storage that hangs is not ready either). */
export function withinTime(p: Promise<HealthProblem | undefined>, ms: number, check: HealthProblem['check']): Promise<HealthProblem | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<HealthProblem>((resolve) => {
    timer = setTimeout(() => resolve({ check, code: 451, reason: `${check} check did not finish within ${ms} ms` }), ms);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
