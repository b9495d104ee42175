import { readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openArchive } from '../../src/archive/admin.js';
import { Journal, JournalError, openJournal } from '../../src/archive/journal.js';
import { ArchiveLayout } from '../../src/archive/layout.js';
import { openFsSink } from '../../src/archive/open-fs-sink.js';
import type { JournalSink } from '../../src/archive/types.js';
import { searchArchive } from '../../src/archive/search.js';
import { verifyArchive } from '../../src/archive/verify.js';
import { allFiles, archiveConfig, decisions, envelope, filesContaining, message, silent, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const LIMITS = { maxItems: 1000, maxBytes: 100 * 1024 * 1024 };

function setup(archive: Record<string, unknown> = {}) {
  const dataDir = tempDir();
  dirs.push(dataDir);
  return { dataDir, ...archiveConfig(dataDir, archive) };
}

const countItemRecords = (dataDir: string) =>
  readFileSync(join(dataDir, 'archive', 'chains', 'journal-0.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"type":"item"')).length;

describe('journal with the fs sink', () => {
  it('round-trips buffers and streams, encrypted at rest: no file under the archive holds the marker', async () => {
    const { dataDir, config } = setup();
    const journal = await openJournal(config, dataDir, silent);
    if (!journal) throw new Error('journal disabled');
    const MARKER = 'MARKER-7f3a9c';
    const small = message(`Lab results ${MARKER}`, `Dear patient, ${MARKER} is your result.`);
    const large = Buffer.concat([message('Large scan', 'see attachment'), Buffer.from(`${'x'.repeat(76)}\r\n`.repeat(40_000)), Buffer.from(`tail ${MARKER}\r\n`)]);
    const e1 = envelope({ from: `dr.${MARKER.toLowerCase()}@hospital.test`, size: small.length });
    const e2 = envelope({ to: ['a@example.net', 'b@example.org'], size: large.length });
    await journal.record({ envelope: e1, decisions: decisions(e1, 'portal'), body: small, categories: ['phi'] });
    // A stream body, cut into small chunks, as the spool hands out large messages.
    const chunks = Array.from({ length: Math.ceil(large.length / 7000) }, (_, i) => large.subarray(i * 7000, (i + 1) * 7000));
    await journal.record({ envelope: e2, decisions: decisions(e2), body: async () => Readable.from(chunks) });
    await journal.close();

    const archiveDir = join(dataDir, 'archive');
    expect(allFiles(archiveDir).length).toBeGreaterThan(3);
    expect(filesContaining(archiveDir, MARKER)).toEqual([]);
    expect(filesContaining(archiveDir, 'Lab results')).toEqual([]);
    expect(filesContaining(archiveDir, 'patient@example.net')).toEqual([]);

    const { reader } = await openArchive(config, dataDir);
    const all = await searchArchive(reader, {}, LIMITS);
    expect(all.hits.map((h) => h.meta.id).sort()).toEqual([e1.id, e2.id].sort());
    const first = all.hits.find((h) => h.meta.id === e1.id);
    expect(first?.meta).toMatchObject({ mailFrom: e1.mailFrom, rcptTo: e1.rcptTo, subject: `Lab results ${MARKER}`, size: small.length, categories: ['phi'], recipients: [{ rcpt: 'patient@example.net', method: 'portal', ruleId: 'default' }] });
    expect(first?.meta.messageId).toMatch(/^<[0-9a-f]+@hospital\.test>$/);
    expect(await reader.content(first!.entry)).toEqual(small);
    const second = all.hits.find((h) => h.meta.id === e2.id);
    expect((await reader.content(second!.entry)).equals(large)).toBe(true);

    const byKeyword = await searchArchive(reader, { keyword: `tail ${MARKER}` }, LIMITS);
    expect(byKeyword.hits.map((h) => h.meta.id)).toEqual([e2.id]);
    expect((await searchArchive(reader, { recipient: '*@example.org' }, LIMITS)).hits.map((h) => h.meta.id)).toEqual([e2.id]);
    expect((await searchArchive(reader, { messageId: first!.meta.messageId!.slice(1, -1) }, LIMITS)).hits.map((h) => h.meta.id)).toEqual([e1.id]);
    expect((await verifyArchive(reader)).problems).toEqual([]);
  });

  it('records a recipient without a decision as method none, with the reason, never as a method it was not given', async () => {
    const { dataDir, config } = setup();
    const journal = await openJournal(config, dataDir, silent);
    const e = envelope({ to: ['decided@example.net', 'undecided@example.net'] });
    const onlyFirst = decisions(e, 'pgp').filter((d) => d.rcpt === 'decided@example.net');
    await journal!.record({ envelope: e, decisions: onlyFirst, body: message('x', 'y') });
    await journal!.close();
    const { reader } = await openArchive(config, dataDir);
    const [hit] = (await searchArchive(reader, {}, LIMITS)).hits;
    expect(hit?.meta.recipients).toEqual([
      { rcpt: 'decided@example.net', method: 'pgp', ruleId: 'default' },
      { rcpt: 'undecided@example.net', method: 'none', ruleId: 'none', reason: expect.stringMatching(/no policy decision/) },
    ]);
  });

  it('keeps every concurrently recorded item apart in shared segment writes, across a restart', async () => {
    const { dataDir, config } = setup();
    const bodies = new Map<string, Buffer>();
    for (let round = 0; round < 2; round++) {
      const j = await openJournal(config, dataDir, silent);
      await Promise.all(
        Array.from({ length: 120 }, (_, i) => {
          const raw = message(`concurrent ${round}-${i}`, i % 40 === 0 ? 'L'.repeat(300 * 1024) : `body ${round}-${i}`);
          const e = envelope({ size: raw.length });
          bodies.set(e.id, raw);
          return j!.record({ envelope: e, decisions: decisions(e), body: raw });
        }),
      );
      await j!.close();
    }
    const { reader } = await openArchive(config, dataDir);
    expect((await verifyArchive(reader)).problems).toEqual([]);
    const hits = (await searchArchive(reader, {}, LIMITS)).hits;
    expect(hits).toHaveLength(240);
    for (const h of hits) expect((await reader.content(h.entry)).equals(bodies.get(h.meta.id) as Buffer)).toBe(true);
    const files = allFiles(join(dataDir, 'archive', 'items'));
    expect(files.filter((f) => f.endsWith('.seg'))).toHaveLength(2); // one per process start
    expect(files.filter((f) => f.endsWith('.item'))).toHaveLength(6);
  });

  it('stores a queue id once, however often and however concurrently it is recorded, across restarts too', async () => {
    const { dataDir, config } = setup();
    const e = envelope();
    const body = message('once', 'only once');
    const j1 = await openJournal(config, dataDir, silent);
    await Promise.all([1, 2, 3].map(() => j1!.record({ envelope: e, decisions: decisions(e), body })));
    await j1!.record({ envelope: e, decisions: decisions(e), body });
    await j1!.close();
    const j2 = await openJournal(config, dataDir, silent);
    await j2!.record({ envelope: e, decisions: decisions(e), body });
    await j2!.close();
    expect(countItemRecords(dataDir)).toBe(1);
  });

  it('a sink down for longer than the recent-ids window, across a restart too: the fs sink that took the item is not asked again (one record)', async () => {
    const { dataDir, config } = setup();
    const layout = ArchiveLayout.forDataDir(dataDir);
    let up = false;
    const asked: string[] = [];
    // Another sink (an archive mailbox) that is down for hours.
    const mailbox: JournalSink = {
      name: 'smtp:archive.test:25',
      async store(item) {
        asked.push(item.envelope.id);
        if (!up) throw new Error('connect ECONNREFUSED');
      },
      async close() {},
    };
    const open = async () => new Journal([await openFsSink(config, layout, silent, 0), mailbox], false, silent);
    const e = envelope();
    const item = { envelope: e, decisions: decisions(e), body: message('outage', 'stored once') };
    const other = () => {
      const o = envelope();
      return { envelope: o, decisions: decisions(o), body: message('other traffic', 'x') };
    };
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const j1 = await open();
      const first = (await j1.record(item).catch((err: unknown) => err)) as JournalError;
      expect(first).toBeInstanceOf(JournalError);
      expect(first.storedIn).toEqual(['fs']);
      // The worker's retries (5 min, then 1 h...) with other mail flowing meanwhile: the fs
      // sink's recent ids forget the first message after 15 minutes.
      for (const minutes of [5, 60]) {
        vi.setSystemTime(Date.now() + minutes * 60_000);
        await j1.record(other()).catch(() => undefined);
        const again = (await j1.record({ ...item, storedIn: first.storedIn }).catch((err: unknown) => err)) as JournalError;
        expect(again.storedIn).toEqual(['fs']);
      }
      await j1.close();
      // A restart hours later; the mailbox is back.
      vi.setSystemTime(Date.now() + 3 * 3_600_000);
      up = true;
      const j2 = await open();
      expect(await j2.record({ ...item, storedIn: first.storedIn })).toEqual(['fs', 'smtp:archive.test:25']);
      await j2.close();
    } finally {
      vi.useRealTimers();
    }
    const records = readFileSync(join(dataDir, 'archive', 'chains', 'journal-0.log'), 'utf8').split('\n').filter((l) => l.includes(`"id":"${e.id}"`));
    expect(records).toHaveLength(1);
    expect(asked.filter((id) => id === e.id)).toHaveLength(4);
  });

  it('finishes after a crash: a recorded large item still in tmp/ is placed, an unrecorded one removed, a recorded one not stored again', async () => {
    const { dataDir, config } = setup();
    const j = await openJournal(config, dataDir, silent);
    const big = message('crash', 'x'.repeat(400 * 1024));
    const small = message('crash small', 'y');
    const eBig = envelope({ size: big.length });
    const eSmall = envelope({ size: small.length });
    await j!.record({ envelope: eBig, decisions: decisions(eBig), body: big });
    await j!.record({ envelope: eSmall, decisions: decisions(eSmall), body: small });
    await j!.close();
    const archiveDir = join(dataDir, 'archive');
    const items = allFiles(join(archiveDir, 'items'));
    expect(items.filter((f) => f.endsWith('.seg'))).toHaveLength(1);
    const itemFile = items.find((f) => f.endsWith(`${eBig.id}.item`)) as string;
    const tmp = join(archiveDir, 'tmp', 'journal-0');
    // As if the rename into items/ had not reached the disk, and another item was half
    // written; the small one is asked for again (its attempt was cut short by the crash).
    renameSync(itemFile, join(tmp, `${eBig.id}.item`));
    writeFileSync(join(tmp, '0000000000ZZZZZZZZ.item'), 'half written');
    const j2 = await openJournal(config, dataDir, silent);
    await j2!.record({ envelope: eSmall, decisions: decisions(eSmall), body: small });
    await j2!.close();
    expect(readdirSync(tmp)).toEqual([]);
    expect(allFiles(join(archiveDir, 'items')).sort()).toEqual(items.sort());
    expect(countItemRecords(dataDir)).toBe(2);
    const { reader } = await openArchive(config, dataDir);
    expect((await verifyArchive(reader)).problems).toEqual([]);
    const found = await searchArchive(reader, { subject: 'crash' }, LIMITS);
    expect((await reader.content(found.hits.find((h) => h.meta.id === eBig.id)!.entry)).equals(big)).toBe(true);
  });

  it('a torn last index line (a crash during its write) is cut off at the next start; the chain goes on from the record before it', async () => {
    const { dataDir, config } = setup();
    const log = join(dataDir, 'archive', 'chains', 'journal-0.log');
    const j1 = await openJournal(config, dataDir, silent);
    const e1 = envelope();
    await j1!.record({ envelope: e1, decisions: decisions(e1), body: message('before the crash', 'x') });
    await j1!.close();
    writeFileSync(log, `${readFileSync(log, 'utf8')}{"seq":2,"prev":"torn`);
    const j2 = await openJournal(config, dataDir, silent);
    const e2 = envelope();
    await j2!.record({ envelope: e2, decisions: decisions(e2), body: message('after the crash', 'y') });
    await j2!.close();
    const seqs = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { seq: number; type: string }));
    expect(seqs.map((r) => `${r.seq}:${r.type}`)).toEqual(['0:genesis', '1:item', '2:item']);
    const { reader } = await openArchive(config, dataDir);
    expect((await verifyArchive(reader)).problems).toEqual([]);
  });

  it('fails closed while the archive directory is unusable, and stores the item once after it is fixed', async () => {
    const { dataDir, config } = setup();
    const j = await openJournal(config, dataDir, silent);
    const e = envelope();
    const item = { envelope: e, decisions: decisions(e), body: message('fault', 'body') };
    const archiveDir = join(dataDir, 'archive');
    // chmod does not stop root: put a plain file where the directory was.
    renameSync(archiveDir, `${archiveDir}.away`);
    writeFileSync(archiveDir, 'not a directory');
    await expect(j!.record(item)).rejects.toThrow(/journal .*fs sink: .*(ENOTDIR|not a directory)/i);
    rmSync(archiveDir);
    renameSync(`${archiveDir}.away`, archiveDir);
    await j!.record(item);
    await j!.record(item);
    await j!.close();
    expect(countItemRecords(dataDir)).toBe(1);
    const { reader } = await openArchive(config, dataDir);
    expect((await verifyArchive(reader)).problems).toEqual([]);
    expect((await searchArchive(reader, {}, LIMITS)).hits).toHaveLength(1);
  });

  it('fails closed when the index was replaced under the open journal', async () => {
    const { dataDir, config } = setup();
    const j = await openJournal(config, dataDir, silent);
    const log = join(dataDir, 'archive', 'chains', 'journal-0.log');
    renameSync(log, `${log}.old`);
    writeFileSync(log, '');
    const e = envelope();
    await expect(j!.record({ envelope: e, decisions: decisions(e), body: message('x', 'y') })).rejects.toThrow(/moved or replaced/);
    await j!.close();
  });
});
