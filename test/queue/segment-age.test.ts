import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsSpool } from '../../src/queue/fs/spool.js';
import { newQueueId } from '../../src/queue/ids.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}
const spoolHolds = (root: string, marker: string) => filesUnder(root).some((f) => readFileSync(f).includes(marker));

async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !check()) await sleep(25);
  return check();
}

describe('fs spool: the active segment is closed by age, so delivered mail leaves the disk', () => {
  const roots: string[] = [];
  const spools: FsSpool[] = [];
  afterEach(async () => {
    for (const s of spools.splice(0)) await s.close();
    for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
  });
  const open = async (root: string) => {
    const q = new FsSpool(root, { segmentMaxAgeMs: 200 });
    spools.push(q);
    await q.open();
    return q;
  };
  const commit = async (q: FsSpool, marker: string) => {
    const w = await q.receive({ id: newQueueId(), receivedAt: Date.now(), mailFrom: 'dr@client.test', rcptTo: ['pat@dest.test'], client: { ip: '127.0.0.1', helo: 'c', sessionId: 's' }, bodyType: '7bit', smtpUtf8: false });
    await w.write(Buffer.from(`Subject: results\r\n\r\n${marker}\r\n`));
    return w.commit();
  };

  it('no spool file holds the text of a delivered message once the rotation age has passed, on an otherwise idle gateway', async () => {
    const root = mkdtempSync(join(tmpdir(), 'postern-spool-age-'));
    roots.push(root);
    const q = await open(root);
    const env = await commit(q, 'PATIENT-RESULT-DELIVERED');
    const [m] = await q.lease(Date.now(), 1);
    expect(m?.envelope.id).toBe(env.id);
    await q.remove(env.id); // delivered
    expect(spoolHolds(root, 'PATIENT-RESULT-DELIVERED')).toBe(true); // still in the active segment
    // No further mail arrives: the segment's age alone must close and delete it.
    expect(await eventually(() => !spoolHolds(root, 'PATIENT-RESULT-DELIVERED'), 5000)).toBe(true);
  });

  it('a segment with a message still queued is closed but kept; it goes once that message is final, and the message survives a restart meanwhile', async () => {
    const root = mkdtempSync(join(tmpdir(), 'postern-spool-age-'));
    roots.push(root);
    let q = await open(root);
    const done = await commit(q, 'DELIVERED-ONE');
    const waiting = await commit(q, 'STILL-QUEUED');
    await q.lease(Date.now(), 2);
    await q.remove(done.id);
    await q.release(waiting.id);
    const segments = () => readdirSync(join(root, 'log')).sort();
    const first = segments()[0];
    // Closed by age (a new active segment exists), but not deleted: it holds a live message.
    expect(await eventually(() => segments().length > 1, 5000)).toBe(true);
    expect(segments()).toContain(first);
    const later = await commit(q, 'IN-THE-NEXT-SEGMENT');
    expect(later.id).toBeDefined();

    await q.close();
    spools.splice(spools.indexOf(q), 1);
    q = await open(root);
    expect((await q.list()).map((x) => x.envelope.id).sort()).toEqual([waiting.id, later.id].sort());
    const [again] = (await q.lease(Date.now(), 10)).filter((x) => x.envelope.id === waiting.id);
    expect(again).toBeDefined();
    await q.remove(waiting.id);
    await q.remove(later.id);
    expect(await eventually(() => !spoolHolds(root, 'STILL-QUEUED') && !spoolHolds(root, 'DELIVERED-ONE') && !spoolHolds(root, 'IN-THE-NEXT-SEGMENT'), 5000)).toBe(true);
  });
});
