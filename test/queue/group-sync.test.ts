import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DirectorySyncer } from '../../src/queue/fs/group-sync.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-group-sync-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
});

const tick = () => new Promise<void>((r) => setImmediate(r));
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await tick();
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Replaces FileHandle#sync with one that logs "start N"/"end N" and waits for the test to
 * release it, so the test decides when each fsync finishes.
 */
async function gateFsync(): Promise<{ events: string[]; release: () => void; started: () => number }> {
  const probe = await open(dir, 'r');
  const proto = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  const original = proto.sync;
  const events: string[] = [];
  const gates: (() => void)[] = [];
  let n = 0;
  vi.spyOn(proto, 'sync').mockImplementation(async function (this: FileHandle) {
    const me = ++n;
    events.push(`start ${me}`);
    // The real fsync is issued now, as the syncer issued it; it only "takes long" until released.
    const real = original.call(this);
    await new Promise<void>((r) => gates.push(r));
    await real;
    events.push(`end ${me}`);
  });
  return {
    events,
    release: () => {
      const g = gates.shift();
      if (!g) throw new Error('no fsync is waiting');
      g();
    },
    started: () => n,
  };
}

describe('DirectorySyncer', () => {
  it('100 concurrent sync() calls share far fewer fsyncs, and all resolve', async () => {
    const syncer = new DirectorySyncer(dir);
    let resolved = 0;
    await Promise.all(Array.from({ length: 100 }, () => syncer.sync().then(() => resolved++)));
    expect(resolved).toBe(100);
    expect(syncer.syncs).toBeGreaterThanOrEqual(1);
    expect(syncer.syncs).toBeLessThanOrEqual(2);
    await syncer.close();
  });

  it('waves of concurrent calls: at most two fsyncs per wave', async () => {
    const syncer = new DirectorySyncer(dir);
    for (let wave = 0; wave < 10; wave++) {
      await Promise.all(Array.from({ length: 100 }, () => syncer.sync()));
    }
    expect(syncer.syncs).toBeLessThanOrEqual(20);
    expect(syncer.syncs).toBeGreaterThanOrEqual(10);
    await syncer.close();
  });

  it('calls spread over time (a few per tick) still batch', async () => {
    const syncer = new DirectorySyncer(dir);
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      calls.push(syncer.sync());
      if (i % 5 === 4) await tick();
    }
    await Promise.all(calls);
    expect(syncer.syncs).toBeLessThan(200);
    await syncer.close();
  });

  it('sequential calls each get their own fsync', async () => {
    const syncer = new DirectorySyncer(dir);
    for (let i = 0; i < 5; i++) await syncer.sync();
    expect(syncer.syncs).toBe(5);
    await syncer.close();
  });

  it('a call made while an fsync runs waits for the next one', async () => {
    const gate = await gateFsync();
    const syncer = new DirectorySyncer(dir);
    const done: string[] = [];

    const first = syncer.sync().then(() => {
      done.push('first');
      gate.events.push('resolved first');
    });
    await until(() => gate.started() === 1, 'fsync 1 to start');

    // These arrive while fsync 1 is in flight: it cannot cover them.
    const during = Array.from({ length: 50 }, (_, i) =>
      syncer.sync().then(() => {
        done.push(`during ${i}`);
        gate.events.push(`resolved during ${i}`);
      }),
    );
    await tick();
    expect(done).toEqual([]);

    gate.release();
    await first;
    expect(done).toEqual(['first']);
    expect(syncer.syncs).toBe(1);

    // The waiting batch gets exactly one more fsync, which started after they called.
    await until(() => gate.started() === 2, 'fsync 2 to start');
    for (let i = 0; i < 5; i++) await tick();
    expect(done).toEqual(['first']);
    expect(syncer.syncs).toBe(2);

    gate.release();
    await Promise.all(during);
    expect(done).toHaveLength(51);
    expect(syncer.syncs).toBe(2);
    const end2 = gate.events.indexOf('end 2');
    expect(end2).toBeGreaterThan(gate.events.indexOf('start 2'));
    for (let i = 0; i < 50; i++) expect(gate.events.indexOf(`resolved during ${i}`)).toBeGreaterThan(end2);
    expect(gate.events.indexOf('resolved first')).toBeLessThan(gate.events.indexOf('start 2'));
    await syncer.close();
  });

  it('a call made during the second fsync waits for a third', async () => {
    const gate = await gateFsync();
    const syncer = new DirectorySyncer(dir);
    const a = syncer.sync();
    await until(() => gate.started() === 1, 'fsync 1');
    const b = syncer.sync();
    gate.release();
    await a;
    await until(() => gate.started() === 2, 'fsync 2');
    let cDone = false;
    const c = syncer.sync().then(() => {
      cDone = true;
    });
    gate.release();
    await b;
    expect(cDone).toBe(false);
    await until(() => gate.started() === 3, 'fsync 3');
    expect(cDone).toBe(false);
    gate.release();
    await c;
    expect(cDone).toBe(true);
    expect(syncer.syncs).toBe(3);
    await syncer.close();
  });

  it('no fsync runs without a caller', async () => {
    const syncer = new DirectorySyncer(dir);
    await syncer.sync();
    for (let i = 0; i < 10; i++) await tick();
    expect(syncer.syncs).toBe(1);
    await syncer.close();
  });

  it('opens the directory once, reuses the handle and closes it on close()', async () => {
    const syncer = new DirectorySyncer(dir);
    const handleOf = () => (syncer as unknown as { handle: Promise<FileHandle> | undefined }).handle;
    await syncer.sync();
    const first = handleOf();
    expect(first).toBeDefined();
    for (let i = 0; i < 3; i++) await syncer.sync();
    expect(handleOf()).toBe(first);
    const fh = await (first as Promise<FileHandle>);
    expect(fh.fd).toBeGreaterThanOrEqual(0);
    await syncer.close();
    expect(handleOf()).toBeUndefined();
    expect(fh.fd).toBe(-1);
  });

  it('close() while one fsync runs and a batch waits: every caller resolves, no error', async () => {
    const syncer = new DirectorySyncer(dir);
    const a = syncer.sync();
    const b = Array.from({ length: 10 }, () => syncer.sync());
    const closing = syncer.close();
    const results = await Promise.allSettled([a, ...b, closing]);
    expect(results.map((r) => r.status)).toEqual(Array(12).fill('fulfilled'));
    expect(syncer.syncs).toBe(2);
  });

  it('after close() a new sync() opens the directory again', async () => {
    const syncer = new DirectorySyncer(dir);
    await syncer.sync();
    await syncer.close();
    await syncer.sync();
    expect(syncer.syncs).toBe(2);
    await syncer.close();
  });

  /**
   * A directory whose fsync really fails: procfs implements no fsync, so the kernel answers
   * EINVAL. The syncer is given a symlink to it, later replaced by a real directory. (Not
   * the EIO of a failed writeback, which cannot be had here without a faulty device; the
   * code path after the failure is the same.)
   */
  function pathWhoseFsyncFails(name: string): { path: string; replaceWithDirectory: () => void } {
    const path = join(dir, name);
    symlinkSync('/proc', path);
    return {
      path,
      replaceWithDirectory: () => {
        rmSync(path);
        mkdirSync(path);
      },
    };
  }
  const fdsOnProc = () => readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === '/proc';
    } catch {
      return false;
    }
  }).length;

  it('after an fsync fails, its descriptor is closed and the next sync opens the directory again', async () => {
    const target = pathWhoseFsyncFails('fails-then-works');
    const before = fdsOnProc();
    const syncer = new DirectorySyncer(target.path);
    await expect(syncer.sync()).rejects.toMatchObject({ code: 'EINVAL' });
    expect(fdsOnProc(), 'descriptor of the failed fsync still open').toBe(before);
    target.replaceWithDirectory();
    await syncer.sync();
    expect(syncer.syncs).toBe(2);
    await syncer.close();
  });

  it('callers that gathered during a failed fsync fail with it: no second fsync is tried for them', async () => {
    const target = pathWhoseFsyncFails('fails-with-batch');
    const syncer = new DirectorySyncer(target.path);
    // The first starts the fsync; the other ten arrive while it runs and form the next batch.
    const results = await Promise.allSettled(Array.from({ length: 11 }, () => syncer.sync()));
    expect(results.map((r) => r.status)).toEqual(Array(11).fill('rejected'));
    for (const r of results) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'EINVAL' });
    expect(syncer.syncs, 'fsyncs made').toBe(1);
    await syncer.close();
  });

  it('a directory that cannot be opened rejects every waiting caller', async () => {
    const syncer = new DirectorySyncer(join(dir, 'does-not-exist'));
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => syncer.sync()));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'ENOENT' });
    expect(syncer.syncs).toBe(0);
    await syncer.close();
  });
});
