import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsSpool } from '../../src/queue/fs/spool.js';
import { newQueueId } from '../../src/queue/ids.js';
import { queueConformance } from './conformance.js';

function harness() {
  const root = mkdtempSync(join(tmpdir(), 'postern-spool-'));
  return { root };
}

queueConformance('fs spool', async () => {
  const { root } = harness();
  let current = new FsSpool(root);
  await current.open();
  return {
    backend: current,
    async restart() {
      await current.close();
      current = new FsSpool(root);
      await current.open();
      return current;
    },
    async cleanup() {
      await current.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
});

describe('fs spool specifics', () => {
  const envelope = () => ({
    id: newQueueId(),
    receivedAt: Date.now(),
    mailFrom: 'a@client.test',
    rcptTo: ['b@dest.test'],
    client: { ip: '127.0.0.1', helo: 'c', sessionId: 's' },
    bodyType: '7bit' as const,
    smtpUtf8: false,
  });

  it('a message written with empty chunks among its writes is recovered after a restart', async () => {
    const { root } = harness();
    const q = new FsSpool(root);
    await q.open();
    const w = await q.receive(envelope());
    const empty = Buffer.alloc(0);
    await w.write(Buffer.from('Subject: empty chunks\r\n\r\n'));
    await w.write(empty.subarray(0, 0));
    await w.write(Buffer.from('body\r\n'));
    const env = await w.commit();
    await q.close();
    const q2 = new FsSpool(root);
    expect((await q2.open()).recovered).toBe(1);
    expect((await q2.get(env.id))?.envelope.id).toBe(env.id);
    await q2.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('cleans half-received temp files and orphaned state files at start-up, by reference', async () => {
    const { root } = harness();
    const q = new FsSpool(root);
    await q.open();
    const w = await q.receive(envelope());
    // Large enough to be written to its own temp file rather than held for the log.
    await w.write(Buffer.alloc(300 * 1024, 0x61));
    await q.close();
    writeFileSync(join(root, 'state', `${newQueueId()}.json`), '{"recipients":[]}');
    writeFileSync(join(root, 'state', `${newQueueId()}.json.tmp`), '{');
    const q2 = new FsSpool(root);
    const { cleaned, recovered } = await q2.open();
    expect(recovered).toBe(0);
    expect(cleaned).toBe(3);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    expect(readdirSync(join(root, 'state'))).toEqual([]);
    await q2.close();
  });

  it('parks an unreadable message file in corrupt/ with the reason instead of deleting it', async () => {
    const { root } = harness();
    mkdirSync(join(root, 'msg'), { recursive: true });
    const id = newQueueId();
    writeFileSync(join(root, 'msg', id), 'this is not an envelope line');
    const q = new FsSpool(root);
    expect((await q.open()).recovered).toBe(0);
    expect(existsSync(join(root, 'corrupt', id))).toBe(true);
    expect(readFileSync(join(root, 'corrupt', `${id}.reason`), 'utf8')).toMatch(/envelope|JSON|truncated/i);
    await q.close();
  });

  it('refuses a second live process on the same spool', async () => {
    const { root } = harness();
    const q = new FsSpool(root);
    await q.open();
    writeFileSync(join(root, 'postern.lock'), String(process.ppid)); // a live process that is not us
    const other = new FsSpool(root, { lockWaitMs: 300 });
    await expect(other.open()).rejects.toThrow(/locked by running process/);
    await q.close();
  });

  it('takes over a lock left by a dead process (kill -9)', async () => {
    const { root } = harness();
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'postern.lock'), '999999999');
    const q = new FsSpool(root);
    await q.open();
    await q.close();
  });

  it('group-commits: concurrent transactions share log flushes', async () => {
    const { root } = harness();
    const q = new FsSpool(root);
    await q.open();
    const n = 80;
    await Promise.all(
      Array.from({ length: n }, async () => {
        const w = await q.receive(envelope());
        await w.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
        return w.commit();
      }),
    );
    expect(q.stats().depth).toBe(n);
    expect(q.flushes).toBeGreaterThan(0);
    expect(q.flushes).toBeLessThan(n / 2);
    await q.close();
  });

  it('leaves nothing behind when the commit of a large message cannot complete', async () => {
    const { root } = harness();
    const q = new FsSpool(root);
    await q.open();
    const w = await q.receive(envelope());
    await w.write(Buffer.alloc(300 * 1024, 0x61));
    // The rename target directory disappears (a disk fault, as far as the spool knows).
    rmSync(join(root, 'msg'), { recursive: true, force: true });
    writeFileSync(join(root, 'msg'), 'not a directory');
    await expect(w.commit()).rejects.toThrow();
    await w.abort();
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    expect(q.stats().depth).toBe(0);
    await q.close();
  });
});

describe('fs spool: segment log', () => {
  const envelope = (rcpt = 'b@dest.test') => ({
    id: newQueueId(),
    receivedAt: Date.now(),
    mailFrom: 'a@client.test',
    rcptTo: [rcpt],
    client: { ip: '127.0.0.1', helo: 'c', sessionId: 's' },
    bodyType: '7bit' as const,
    smtpUtf8: false,
  });
  async function store(q: FsSpool, body: string) {
    const w = await q.receive(envelope());
    await w.write(Buffer.from(body));
    return w.commit();
  }
  const logFiles = (root: string) => readdirSync(join(root, 'log')).filter((f) => f.endsWith('.log'));

  it('cuts a torn record at the end of a segment and keeps everything before it', async () => {
    const { root } = harness();
    const q = new FsSpool(root);
    await q.open();
    const kept = await store(q, 'Subject: kept\r\n\r\nkept\r\n');
    await q.close();
    // A crash in the middle of the next write: half a record at the end of the segment.
    const seg = join(root, 'log', logFiles(root).sort().at(-1)!);
    const { appendFileSync, statSync } = await import('node:fs');
    const before = statSync(seg).size;
    appendFileSync(seg, Buffer.from('PSTN\x01\x00\x00\x10\x00garbage'));
    const q2 = new FsSpool(root);
    expect((await q2.open()).recovered).toBe(1);
    expect((await q2.get(kept.id))?.envelope.size).toBe(kept.size);
    expect(statSync(seg).size).toBe(before);
    await q2.close();
  });

  it('writes a DONE record only inside a flushing write: with the next commit, or on its own after a short linger', async () => {
    // An O_DSYNC write flushes only its own range. A DONE written without a flush could
    // come back as zeros after a power failure, in the middle of the segment, and
    // recovery would cut off the acknowledged messages after it.
    const { root } = harness();
    const q = new FsSpool(root);
    await q.open();
    const { statSync } = await import('node:fs');
    const { parseSegment } = await import('../../src/queue/fs/log-record.js');
    const m1 = await store(q, 'Subject: one\r\n\r\none\r\n');
    const seg = join(root, 'log', logFiles(root).sort().at(-1)!);
    const sizeAfterM1 = statSync(seg).size;
    const flushesAfterM1 = q.flushes;
    await q.lease(Date.now(), 10);
    await q.remove(m1.id);
    expect(statSync(seg).size).toBe(sizeAfterM1); // not written on its own
    const m2 = await store(q, 'Subject: two\r\n\r\ntwo\r\n');
    expect(q.flushes).toBe(flushesAfterM1 + 1); // one write carried both
    const records = parseSegment(readFileSync(seg)).records;
    expect(records.map((r) => (r.type === 2 ? `done:${r.id}` : 'message'))).toEqual(['message', `done:${m1.id}`, 'message']);
    // Nothing comes after this DONE: it is written (and flushed) by itself shortly after.
    await q.lease(Date.now(), 10);
    await q.remove(m2.id);
    await new Promise((r) => setTimeout(r, 200));
    expect(q.flushes).toBe(flushesAfterM1 + 2);
    expect(parseSegment(readFileSync(seg)).records.at(-1)).toMatchObject({ type: 2, id: m2.id });
    await q.close();
    const q2 = new FsSpool(root);
    expect((await q2.open()).recovered).toBe(0);
    await q2.close();
  });

  it('writes the DONE records still waiting when it closes', async () => {
    const { root } = harness();
    const q = new FsSpool(root);
    await q.open();
    const m = await store(q, 'Subject: closing\r\n\r\nx\r\n');
    await q.lease(Date.now(), 10);
    await q.remove(m.id);
    await q.close();
    const q2 = new FsSpool(root);
    expect((await q2.open()).recovered).toBe(0);
    await q2.close();
  });

  it('keeps message content private to the gateway user: directories 0700, segments and files 0600', async () => {
    const { root } = harness();
    const q = new FsSpool(root);
    await q.open();
    const m = await store(q, 'Subject: private\r\n\r\nx\r\n');
    const [leased] = await q.lease(Date.now(), 1);
    leased!.state.recipients[0]!.nextAttemptAt = Date.now() + 60_000;
    await q.save(m.id, leased!.state);
    const { statSync } = await import('node:fs');
    const mode = (p: string) => statSync(p).mode & 0o777;
    for (const dir of ['log', 'msg', 'state', 'tmp']) expect(mode(join(root, dir)).toString(8)).toBe('700');
    expect(mode(join(root, 'log', logFiles(root)[0]!)).toString(8)).toBe('600');
    expect(mode(join(root, 'msg', m.id)).toString(8)).toBe('600');
    expect(mode(join(root, 'state', `${m.id}.json`)).toString(8)).toBe('600');
    await q.close();
  });

  it('deletes a segment once every message in it is final, never while one is live', async () => {
    const { root } = harness();
    const q = new FsSpool(root, { segmentMaxBytes: 200 });
    await q.open();
    const a = await store(q, `Subject: a\r\n\r\n${'a'.repeat(300)}\r\n`); // fills segment 1
    const b = await store(q, 'Subject: b\r\n\r\nb\r\n'); // goes to segment 2
    expect(logFiles(root).length).toBeGreaterThanOrEqual(2);
    const first = logFiles(root).sort()[0];
    await q.lease(Date.now(), 10);
    await q.remove(b.id);
    await new Promise((r) => setTimeout(r, 50));
    expect(logFiles(root)).toContain(first); // a is still live in it
    await q.remove(a.id);
    await new Promise((r) => setTimeout(r, 50));
    expect(logFiles(root)).not.toContain(first);
    await q.close();
    expect((await (async () => { const q2 = new FsSpool(root); const r = await q2.open(); await q2.close(); return r.recovered; })())).toBe(0);
  });

  it('a segment that cannot be removed stays, without an unhandled rejection, and a later sweep removes it', async () => {
    const { root } = harness();
    const q = new FsSpool(root, { segmentMaxBytes: 200 });
    await q.open();
    const a = await store(q, `Subject: a\r\n\r\n${'a'.repeat(300)}\r\n`); // fills segment 1
    const b = await store(q, 'Subject: b\r\n\r\nb\r\n'); // goes to segment 2, the active one
    const first = join(root, 'log', logFiles(root).sort()[0]!);
    // Something the removal cannot take away, whoever runs the test (root included): a
    // non-empty directory where segment 1 was. rm() fails as on EIO or EROFS.
    rmSync(first);
    mkdirSync(first);
    writeFileSync(join(first, 'obstacle'), 'x');
    await q.lease(Date.now(), 10);
    await q.remove(a.id); // segment 1 has no live message left: the sweep tries, and fails
    await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(join(first, 'obstacle'))).toBe(true);

    // The obstacle goes; segment 1 is a file again. The next sweep (another message made
    // final) must still know about it.
    rmSync(first, { recursive: true });
    writeFileSync(first, 'segment 1');
    await q.remove(b.id);
    await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(first)).toBe(false);
    await q.close();
  });

  it('moves a deferred message out of the log into its own file, and it survives a restart', async () => {
    const { root } = harness();
    const q = new FsSpool(root);
    await q.open();
    const m = await store(q, 'Subject: deferred\r\n\r\nwait for me\r\n');
    const [leased] = await q.lease(Date.now(), 1);
    leased!.state.recipients[0]!.nextAttemptAt = Date.now() + 60_000;
    leased!.state.recipients[0]!.attempts = 1;
    await q.save(m.id, leased!.state);
    expect(readdirSync(join(root, 'msg'))).toEqual([m.id]);
    await q.close();
    const q2 = new FsSpool(root);
    expect((await q2.open()).recovered).toBe(1);
    const got = await q2.get(m.id);
    expect(got?.state.recipients[0]?.attempts).toBe(1);
    const chunks: Buffer[] = [];
    for await (const c of await q2.openBody(m.id)) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('Subject: deferred\r\n\r\nwait for me\r\n');
    await q2.close();
  });

  it('answers a failed log write with a rejected commit and keeps working on a new segment', async () => {
    const { root } = harness();
    const q = new FsSpool(root);
    await q.open();
    // A descriptor number no process has: the next write fails with EBADF, like a dead disk.
    Object.assign((q as unknown as { log: object }).log, { fd: 1_000_000, syncFd: 1_000_001 });
    const w = await q.receive(envelope());
    await w.write(Buffer.from('Subject: lost\r\n\r\nx\r\n'));
    await expect(w.commit()).rejects.toThrow();
    await w.abort();
    expect(q.stats().depth).toBe(0);
    const ok = await store(q, 'Subject: next\r\n\r\ny\r\n');
    expect((await q.get(ok.id))?.envelope.id).toBe(ok.id);
    await q.close();
  });
});
