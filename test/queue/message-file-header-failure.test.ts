import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WRITE_BATCH } from '../../src/queue/fs/message-file.js';
import { FsSpool } from '../../src/queue/fs/spool.js';
import { newQueueId } from '../../src/queue/ids.js';
import { findProgram } from '../helpers/programs.js';

const prlimit = findProgram('prlimit');

/**
 * This test process's own file size limit (RLIMIT_FSIZE), soft only, so it can be put
 * back: at one byte every write that grows a file fails with EFBIG, whoever runs the
 * test (root included), as a full disk would.
 */
const limitFileSize = (soft: string) => execFileSync(prlimit as string, ['--pid', String(process.pid), `--fsize=${soft}:`]);

async function withFileSizeLimit<T>(run: () => Promise<T>): Promise<T> {
  limitFileSize('1');
  try {
    return await run();
  } finally {
    limitFileSize('unlimited');
  }
}

/** Where this process's open descriptors point, those under `dir` only. */
const fdsUnder = (dir: string) =>
  readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return ''; // closed between readdir and readlink (readdir's own descriptor)
      }
    })
    .filter((target) => target.startsWith(dir));

/** smtp.limits.maxRecipients (1000) of ~80 bytes: the envelope line alone is over WRITE_BATCH. */
const manyRecipients = Array.from({ length: 1000 }, (_, i) => `recipient-number-${i}-with-a-much-longer-local-part-xxxxxxxxxx@example-${i}.org`);

const envelope = () => ({
  id: newQueueId(),
  receivedAt: Date.now(),
  mailFrom: 'a@client.test',
  rcptTo: manyRecipients,
  client: { ip: '127.0.0.1', helo: 'c', sessionId: 's' },
  bodyType: '7bit' as const,
  smtpUtf8: false,
});

// Skipped only on a developer machine without prlimit (util-linux); under CI=true findProgram throws.
// Skipped only on a developer machine without prlimit (util-linux); under CI=true findProgram throws.
describe.skipIf(!prlimit)('a message file whose envelope line cannot be written', () => {
  const roots: string[] = [];
  afterAll(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });
  async function openSpool(): Promise<{ spool: FsSpool; tmp: string }> {
    const root = mkdtempSync(join(tmpdir(), 'postern-msgfile-'));
    roots.push(root);
    const spool = new FsSpool(root);
    await spool.open();
    return { spool, tmp: join(root, 'tmp') };
  }

  it('the envelope line really is larger than one write batch', () => {
    expect(Buffer.byteLength(JSON.stringify(envelope()))).toBeGreaterThan(WRITE_BATCH);
  });

  it('a large body on a disk that refuses writes: after abort() no temp file and no descriptor is left', async () => {
    const { spool, tmp } = await openSpool();
    const w = await spool.receive(envelope());
    // Over logRecordMax (256 KiB): the body moves to a file of its own, header line first.
    const failure = await withFileSizeLimit(() => w.write(Buffer.alloc(300 * 1024, 0x61)).then(() => undefined, (err: NodeJS.ErrnoException) => err));
    expect(failure?.code).toBe('EFBIG');
    await w.abort();
    expect(fdsUnder(tmp)).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]);
    await spool.close();
  });

  it('moving a log message to its own file on a disk that refuses writes leaves no temp file and no descriptor', async () => {
    const { spool, tmp } = await openSpool();
    const w = await spool.receive(envelope());
    await w.write(Buffer.from('Subject: small\r\n\r\nbody\r\n'));
    await w.commit();
    const failure = await withFileSizeLimit(() => spool.moveAllToFiles().then(() => undefined, (err: NodeJS.ErrnoException) => err));
    expect(failure?.code).toBe('EFBIG');
    expect(fdsUnder(tmp)).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]);
    await spool.close();
  });
});
