import { closeSync, mkdtempSync, openSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsSpool } from '../../src/queue/fs/spool.js';
import { newQueueId } from '../../src/queue/ids.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The file descriptors of this process, number → what it points to. */
function openFds(): Map<number, string> {
  const fds = new Map<number, string>();
  for (const n of readdirSync('/proc/self/fd')) {
    try {
      fds.set(Number(n), readlinkSync(`/proc/self/fd/${n}`));
    } catch {
      // closed while listing (the listing's own descriptor)
    }
  }
  return fds;
}

/**
 * A new spool segment that cannot be created (the log directory gone: EROFS, EIO, ENOSPC
 * in real life) must not leave the log holding the number of the segment it closed:
 * the kernel hands that number to the next file or socket opened, and the log's next
 * try would close it, then write spool records into whatever got it.
 */
describe('fs spool: a segment that cannot be created', () => {
  const roots: string[] = [];
  const spools: FsSpool[] = [];
  const mine: number[] = [];
  afterEach(async () => {
    for (const fd of mine.splice(0)) closeSync(fd);
    for (const s of spools.splice(0)) await s.close().catch(() => undefined);
    for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
  });

  const commit = async (q: FsSpool, text: string) => {
    const w = await q.receive({ id: newQueueId(), receivedAt: Date.now(), mailFrom: 'dr@client.test', rcptTo: ['pat@dest.test'], client: { ip: '127.0.0.1', helo: 'c', sessionId: 's' }, bodyType: '7bit', smtpUtf8: false });
    await w.write(Buffer.from(`Subject: x\r\n\r\n${text}\r\n`));
    return w.commit();
  };

  it("leaves the descriptor the kernel gave to someone else alone, and the next segment takes the spool's records", async () => {
    const root = mkdtempSync(join(tmpdir(), 'postern-segment-reopen-'));
    roots.push(root);
    const q = new FsSpool(root, { segmentMaxAgeMs: 200 });
    spools.push(q);
    await q.open();
    const first = await commit(q, 'first');
    const log = join(root, 'log');
    const segmentFd = [...openFds()].find(([, target]) => target.startsWith(`${log}/`))?.[0];
    expect(segmentFd).toBeDefined();

    // The rotation by age finds no directory to create the next segment in.
    renameSync(log, `${log}.away`);
    writeFileSync(log, 'not a directory');
    for (let i = 0; i < 100 && openFds().has(segmentFd as number); i++) await sleep(20);
    expect(openFds().has(segmentFd as number), 'the old segment was closed').toBe(false);
    rmSync(log);
    renameSync(`${log}.away`, log);

    // Someone else opens a file and gets the lowest free number: the old segment's.
    const other = join(root, 'someone-else.txt');
    writeFileSync(other, 'not the spool\n');
    const otherFd = openSync(other, 'r+');
    mine.push(otherFd);
    expect(otherFd).toBe(segmentFd);

    // The next commit starts a new segment; the other file must stay open and untouched.
    const second = await commit(q, 'second');
    expect(openFds().get(otherFd)).toBe(other);
    const ids = (await q.lease(Date.now(), 10)).map((m) => m.envelope.id).sort();
    expect(ids).toEqual([first.id, second.id].sort());
    await q.close();
    spools.length = 0;

    // Both survive a restart from the log.
    const again = new FsSpool(root, { segmentMaxAgeMs: 200 });
    spools.push(again);
    await again.open();
    const recovered = (await again.lease(Date.now(), 10)).map((m) => m.envelope.id).sort();
    expect(recovered).toEqual([first.id, second.id].sort());
  });
});
