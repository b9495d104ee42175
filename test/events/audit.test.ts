import { createHash } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { recordAuditEvents, startAuditTrail, type AuditTrail } from '../../src/events/audit.js';
import { verifyAudit } from '../../src/events/audit-verify.js';
import { capturedLogger, tempDir } from './helpers.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const linesOf = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);
const chainFiles = (dataDir: string, shard = '0') =>
  readdirSync(join(dataDir, 'audit', shard))
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .map((f) => join(dataDir, 'audit', shard, f));

describe('audit trail', () => {
  const open: AuditTrail[] = [];
  afterEach(async () => {
    for (const t of open.splice(0)) await t.close();
  });

  async function trail(dataDir: string, shard: number | string = 0, maxFileBytes?: number) {
    const { logger, bus, lines } = capturedLogger();
    const t = await startAuditTrail({ dataDir, shard, bus, logger, flushInterval: 10, maxFileBytes });
    open.push(t);
    return { t, logger, lines };
  }

  /** Logs n delivery lines for queue ids Q0.., as the settler does; with `t`, one batch each (files rotate between batches). */
  async function deliveries(logger: ReturnType<typeof capturedLogger>['logger'], n: number, from = 0, t?: AuditTrail) {
    for (let i = from; i < from + n; i++) {
      logger.info({ event: 'delivery.sent', queueId: `Q${i}`, to: `r${i}@dest.test`, status: 'sent', attempt: 1 }, 'delivered');
      await t?.flush();
    }
  }

  it('records audited events as a hash chain, without secrets or content, and leaves other events out', async () => {
    const dataDir = tempDir();
    const { t, logger } = await trail(dataDir);
    logger.info({ event: 'queue.accepted', queueId: 'Q1', from: 'a@client.test', password: 'hunter2-secret', body: 'Patient SSN 123-45-6789', nested: { apiKey: 'k-123', authorization: 'Basic xyz', ok: 1 } }, 'queued');
    logger.info({ event: 'delivery.connection', conn: 1 }, 'not an audit event');
    logger.debug({ event: 'policy.decision', queueId: 'Q1', to: 'r@dest.test', rule: 'default' }, 'decision at debug still reaches the bus? no: debug is below it');
    logger.warn({ event: 'delivery.deferred', queueId: 'Q1', to: 'r@dest.test', status: 'deferred', subject: 'Lab results for J. Doe' }, 'deferred');
    await t.flush();
    const [file] = chainFiles(dataDir);
    const lines = linesOf(file!);
    expect(lines).toHaveLength(2);
    const [a, b] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(Object.keys(a!)).toEqual(['seq', 'time', 'event', 'fields', 'prev']);
    expect(a).toMatchObject({ seq: 0, event: 'queue.accepted', prev: '0'.repeat(64), fields: { queueId: 'Q1', from: 'a@client.test', nested: { ok: 1 } } });
    expect(b).toMatchObject({ seq: 1, event: 'delivery.deferred', prev: sha256(lines[0]!) });
    const text = readFileSync(file!, 'utf8');
    for (const secret of ['hunter2', '123-45-6789', 'k-123', 'Basic xyz', 'Lab results']) expect(text).not.toContain(secret);
    expect(await verifyAudit(dataDir)).toEqual({ ok: true, records: 2, chains: 1 });
  });

  it('records admin API calls with who, what and from where', async () => {
    const dataDir = tempDir();
    const { t, logger } = await trail(dataDir);
    const call = { event: 'api.call', actor: 'ops-key', role: 'operator', via: 'api-key', method: 'DELETE', path: '/api/v1/queue/Q1', route: '/api/v1/queue/:id', status: 200, ip: '10.0.0.9' };
    logger.info({ ...call, headers: { 'x-api-key': 'pk_live_should_not_appear', authorization: 'Basic c2VjcmV0' } }, 'admin API call');
    logger.warn({ ...call, actor: undefined, role: undefined, status: 401 }, 'admin API call refused');
    await t.flush();
    const records = linesOf(chainFiles(dataDir)[0]!).map((l) => JSON.parse(l) as { event: string; fields: Record<string, unknown> });
    const { event: _code, ...fields } = call;
    expect(records.map((r) => r.event)).toEqual(['api.call', 'api.call']);
    expect(records[0]?.fields).toMatchObject(fields);
    expect(records[1]?.fields).toMatchObject({ status: 401, ip: '10.0.0.9', path: '/api/v1/queue/Q1' });
    const text = JSON.stringify(records);
    expect(text).not.toContain('pk_live');
    expect(text).not.toContain('c2VjcmV0');
  });

  it('continues the chain across restarts and across files', async () => {
    const dataDir = tempDir();
    const first = await trail(dataDir, 0, 600);
    await deliveries(first.logger, 5, 0, first.t);
    await first.t.close();
    open.splice(open.indexOf(first.t), 1);
    const second = await trail(dataDir, 0, 600);
    await deliveries(second.logger, 5, 5, second.t);
    await second.t.flush();
    const files = chainFiles(dataDir);
    expect(files.length).toBeGreaterThan(2);
    const all = files.flatMap(linesOf);
    expect(all.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([...Array(10).keys()]);
    for (let i = 1; i < all.length; i++) expect((JSON.parse(all[i]!) as { prev: string }).prev).toBe(sha256(all[i - 1]!));
    expect(await verifyAudit(dataDir)).toMatchObject({ ok: true, records: 10 });
  });

  describe('verify finds the first broken link', () => {
    async function written(n: number, maxFileBytes?: number): Promise<{ dataDir: string; files: string[] }> {
      const dataDir = tempDir();
      const { t, logger } = await trail(dataDir, 0, maxFileBytes);
      await deliveries(logger, n, 0, maxFileBytes ? t : undefined);
      await t.close();
      open.splice(open.indexOf(t), 1);
      return { dataDir, files: chainFiles(dataDir) };
    }
    const rewrite = (file: string, edit: (lines: string[]) => string[]) => writeFileSync(file, edit(linesOf(file)).map((l) => `${l}\n`).join(''));

    it('an edited line is reported at that line', async () => {
      const { dataDir, files } = await written(8);
      rewrite(files[0]!, (ls) => ls.map((l, i) => (i === 3 ? l.replace('r3@dest.test', 'someone@else.test') : l)));
      const r = await verifyAudit(dataDir);
      expect(r.ok).toBe(false);
      expect(r.firstBreak).toMatchObject({ file: join('audit', '0', files[0]!.split('/').at(-1)!), line: 4 });
      expect(r.firstBreak?.reason).toMatch(/altered/);
    });

    it('an edited prev (a line re-linked by hand) is reported at that line', async () => {
      const { dataDir, files } = await written(8);
      rewrite(files[0]!, (ls) => ls.map((l, i) => (i === 5 ? l.replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${'a'.repeat(64)}"`) : l)));
      expect((await verifyAudit(dataDir)).firstBreak).toMatchObject({ line: 6, reason: expect.stringMatching(/altered/) });
    });

    it('a deleted line is reported where it was missing', async () => {
      const { dataDir, files } = await written(8);
      rewrite(files[0]!, (ls) => ls.filter((_, i) => i !== 2));
      const r = await verifyAudit(dataDir);
      expect(r.firstBreak).toMatchObject({ line: 3, reason: expect.stringMatching(/1 record\(s\) missing before this line/) });
      expect(r.records).toBe(2);
    });

    it('an edited or removed last line is caught by the head', async () => {
      const edited = await written(4);
      rewrite(edited.files[0]!, (ls) => ls.map((l, i) => (i === 3 ? l.replace('"attempt":1', '"attempt":2') : l)));
      expect((await verifyAudit(edited.dataDir)).firstBreak).toMatchObject({ line: 4, reason: expect.stringMatching(/head/) });
      const cut = await written(4);
      rewrite(cut.files[0]!, (ls) => ls.slice(0, 2));
      expect((await verifyAudit(cut.dataDir)).firstBreak).toMatchObject({ line: 2, reason: expect.stringMatching(/ends at seq 1 but its head says seq 3/) });
    });

    it('a removed middle file is reported at the first line after it', async () => {
      const { dataDir, files } = await written(12, 400);
      expect(files.length).toBeGreaterThan(2);
      rmSync(files[1]!);
      const r = await verifyAudit(dataDir);
      expect(r.firstBreak).toMatchObject({ file: join('audit', '0', files[2]!.split('/').at(-1)!), line: 1, reason: expect.stringMatching(/missing before this line/) });
    });

    it('garbage in a line is reported there', async () => {
      const { dataDir, files } = await written(5);
      rewrite(files[0]!, (ls) => ls.map((l, i) => (i === 1 ? '{"seq": 1, "oops"' : l)));
      expect((await verifyAudit(dataDir)).firstBreak).toMatchObject({ line: 2, reason: expect.stringMatching(/not valid JSON/) });
    });

    it('a start-up that finds the chain shorter than its head writes that into the trail', async () => {
      const { dataDir, files } = await written(5);
      rewrite(files[0]!, (ls) => ls.slice(0, 3));
      const again = await trail(dataDir);
      await deliveries(again.logger, 2, 10);
      await again.t.flush();
      const r = await verifyAudit(dataDir);
      expect(r.firstBreak).toMatchObject({ line: 4, reason: expect.stringMatching(/records were removed from the end/) });
    });
  });

  it('a line cut short by a crash is not a break, and the next start cuts it off and links to the last whole line', async () => {
    const dataDir = tempDir();
    const first = await trail(dataDir);
    await deliveries(first.logger, 3);
    await first.t.close();
    open.splice(open.indexOf(first.t), 1);
    const [file] = chainFiles(dataDir);
    appendFileSync(file!, '{"seq":3,"time":"2026-01-01T00:00:00.000Z","ev');
    expect(await verifyAudit(dataDir)).toMatchObject({ ok: true, records: 3 });
    const second = await trail(dataDir);
    await deliveries(second.logger, 1, 3);
    await second.t.flush();
    const lines = linesOf(file!);
    expect(lines).toHaveLength(4);
    expect(JSON.parse(lines[3]!)).toMatchObject({ seq: 3, prev: sha256(lines[2]!) });
    expect(await verifyAudit(dataDir)).toMatchObject({ ok: true, records: 4 });
  });

  it('each shard writes its own chain; verify walks them all, and command-line tools append to the cli chain', async () => {
    const dataDir = tempDir();
    const a = await trail(dataDir, 0);
    const b = await trail(dataDir, 1);
    await deliveries(a.logger, 3);
    await deliveries(b.logger, 4, 100);
    await Promise.all([a.t.flush(), b.t.flush()]);
    await recordAuditEvents(dataDir, [{ event: 'portal.revoked', fields: { portalId: 'P1', by: 'ops', token: 'never-kept' } }]);
    expect(await verifyAudit(dataDir)).toEqual({ ok: true, records: 8, chains: 3 });
    const cli = linesOf(chainFiles(dataDir, 'cli')[0]!);
    expect(JSON.parse(cli[0]!)).toMatchObject({ seq: 0, event: 'portal.revoked', fields: { portalId: 'P1', by: 'ops' } });
    expect(cli[0]).not.toContain('never-kept');
    rewrite1(chainFiles(dataDir, '1')[0]!);
    expect((await verifyAudit(dataDir)).firstBreak).toMatchObject({ file: expect.stringContaining(join('audit', '1')), line: 2 });
  });
});

function rewrite1(file: string) {
  const ls = linesOf(file);
  ls[1] = ls[1]!.replace('r101@', 'x101@');
  writeFileSync(file, ls.map((l) => `${l}\n`).join(''));
}
