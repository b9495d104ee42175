import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openArchive } from '../../src/archive/admin.js';
import { searchArchive } from '../../src/archive/search.js';
import { verifyArchive } from '../../src/archive/verify.js';
import { adminConfig, call, startAdmin } from '../api/admin-helpers.js';
import { parseMetrics, sample } from '../events/metrics-helpers.js';
import { sealMeta } from '../../src/archive/meta-crypto.js';
import { archiveProblems, filesUnder } from '../helpers/archive-check.js';
import { startTestGateway } from '../helpers/gateway.js';
import { createTestCa } from '../helpers/pki.js';
import { scenario } from '../helpers/scenario.js';
import { sendMail, testMessage, type SendResult } from '../helpers/smtp-client.js';
import { closedPort } from '../helpers/closed-port.js';

const s = scenario();
const ca = createTestCa('Journal Test CA');
const scratch = mkdtempSync(join(tmpdir(), 'postern-journal-e2e-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));


/**
 * Makes a directory unusable under a running gateway; returns the repair. As root on a
 * file system that has it, the immutable flag (root ignores modes, not that): every
 * write, new file and rename in it fails with EPERM. Elsewhere the directory is moved
 * aside and a plain file put in its place (ENOTDIR; the index writer notices its log
 * is no longer where it was).
 */
function breakDirectory(dir: string): { how: string; repair: () => void } {
  try {
    execFileSync('chattr', ['-R', '+i', dir], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, 'probe'), '');
      unlinkSync(join(dir, 'probe'));
      execFileSync('chattr', ['-R', '-i', dir], { stdio: 'ignore' }); // the flag did not hold
    } catch {
      return { how: 'immutable', repair: () => execFileSync('chattr', ['-R', '-i', dir], { stdio: 'ignore' }) };
    }
  } catch {
    // no chattr, not root, or a file system without the flag
  }
  renameSync(dir, `${dir}.away`);
  writeFileSync(dir, 'not a directory');
  return {
    how: 'replaced by a file',
    repair: () => {
      unlinkSync(dir);
      renameSync(`${dir}.away`, dir);
    },
  };
}

describe('the journal step of delivery', () => {
  it('every relayed message is in the archive, with its envelope, subject and each recipient\'s method; no file holds its text', async () => {
    const mx = await s.mx();
    const gw = await s.gateway({ delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'may' } } } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await sendMail(gw.port, { from: 'dr@client.test', to: [`p${i}@dest.test`, 'nurse@dest.test'], raw: testMessage({ subject: `Follow-up ${i}`, body: `JOURNAL-MARKER-${i} see you Tuesday` }) });
      expect(r.ok).toBe(true);
      ids.push(r.queueId as string);
    }
    await mx.waitFor(3);
    for (const id of ids) {
      await gw.waitForLog((l) => l.event === 'delivery.sent' && l.queueId === id);
      const journaled = gw.events('archive.journaled').findIndex((l) => l.queueId === id);
      const sent = gw.logs.findIndex((l) => l.event === 'delivery.sent' && l.queueId === id);
      expect(journaled).toBeGreaterThanOrEqual(0);
      expect(journaled).toBeLessThan(sent); // before any delivery
    }
    const archive = await openArchive(gw.config, gw.dataDir);
    const found = await searchArchive(archive.reader, { sender: 'dr@client.test' }, gw.config.archive.searchLimits);
    expect(found.hits.map((h) => h.meta.id).sort()).toEqual([...ids].sort());
    const first = found.hits.find((h) => h.meta.id === ids[0])!;
    expect(first.meta).toMatchObject({ mailFrom: 'dr@client.test', rcptTo: ['p0@dest.test', 'nurse@dest.test'], subject: 'Follow-up 0' });
    expect(JSON.stringify(first.meta)).toContain('"method":"tls"');
    const keyword = await searchArchive(archive.reader, { keyword: 'JOURNAL-MARKER-2' }, gw.config.archive.searchLimits);
    expect(keyword.hits.map((h) => h.meta.id)).toEqual([ids[2]]);
    for (const f of filesUnder(join(gw.dataDir, 'archive'))) expect(readFileSync(f).includes('JOURNAL-MARKER'), f).toBe(false);
  });

  it('the archive check this file relies on can fail: a recipient swapped, a method or rule changed in the sealed metadata are each named', async () => {
    const mx = await s.mx();
    let problems: string[] = [];
    // Tampered after the gateway stopped, before its directory goes: re-sealed with the item's own key, as a correct-looking record.
    const gw = await startTestGateway({ delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'may' } } } }, undefined, {
      afterStop: async (stopped) => {
        const { reader } = await openArchive(stopped.config, stopped.dataDir);
        const log = join(stopped.dataDir, 'archive', 'chains', 'journal-0.log');
        const lines = readFileSync(log, 'utf8').split('\n');
        for await (const entry of reader.items()) {
          const meta = await reader.meta(entry);
          meta.rcptTo = [meta.rcptTo[0]!, 'someone-else@dest.test'];
          meta.recipients = [{ ...meta.recipients[0]!, method: 'pgp', ruleId: 'forged-rule' }, { ...meta.recipients[1]!, rcpt: 'someone-else@dest.test' }];
          const sealed = await reader.withKey(entry, (key) => sealMeta(meta, key));
          lines[entry.record.seq] = JSON.stringify({ ...entry.record, meta: sealed });
        }
        writeFileSync(log, lines.join('\n'));
        problems = await archiveProblems(stopped);
      },
    });
    let r: SendResult | undefined;
    try {
      r = await sendMail(gw.port, { from: 'dr@client.test', to: ['first@dest.test', 'second@dest.test'], raw: testMessage({ subject: 'Checked by the test helper' }) });
      await gw.waitForLog((l) => l.event === 'delivery.sent' && l.queueId === r?.queueId && l.to === 'second@dest.test');
    } finally {
      await gw.stop();
    }
    expect(problems).toEqual(
      expect.arrayContaining([
        `${r.queueId}: first@dest.test is archived as pgp, the gateway used tls`,
        `${r.queueId}: first@dest.test is archived under rule forged-rule, the gateway decided by default`,
        `${r.queueId}: rcptTo is ["first@dest.test","someone-else@dest.test"] in the archive, but the gateway handled second@dest.test`,
      ]),
    );
  });

  it('journal server down: nothing is delivered; once it is up, the message is journaled and delivered once', async () => {
    const tls = ca.issue(['journal.archive.test']);
    const journalPort = await closedPort();
    const mx = await s.mx();
    const gw = await s.gateway({
      delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'may' } } },
      archive: { sinks: [{ type: 'fs' }, { type: 'smtp', server: `127.0.0.1:${journalPort}`, to: 'journal@archive.test', servername: 'journal.archive.test', ca: [ca.caFile], timeout: '3s' }] },
    });
    const r = await sendMail(gw.port, { from: 'dr@client.test', to: ['p@dest.test'], raw: testMessage({ subject: 'Wait for the archive' }) });
    expect(r.ok).toBe(true);
    const deferred = await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === r.queueId);
    expect(deferred).toMatchObject({ category: 'journal', dsn: '4.3.0' });
    expect(String(deferred.response)).toMatch(/not archived yet/);
    expect(mx.messages).toHaveLength(0);
    // Saved with the attempt: the fs sink holds it and is not asked again on the retries.
    let saved = await gw.gateway.queue.get(r.queueId as string);
    for (let i = 0; i < 50 && !saved?.state.journaledSinks; i++) {
      await new Promise((res) => setTimeout(res, 20));
      saved = await gw.gateway.queue.get(r.queueId as string);
    }
    expect(saved?.state).toMatchObject({ journaledSinks: ['fs'] });
    expect(saved?.state.journaled).toBeFalsy();

    const journalMx = await s.mx({ tls, port: journalPort });
    await mx.waitFor(1, 20_000);
    await journalMx.waitFor(1, 5_000);
    await new Promise((res) => setTimeout(res, 1000));
    expect(mx.messages).toHaveLength(1);
    expect(journalMx.messages).toHaveLength(1);
    expect(journalMx.messages[0]!.secure).toBe(true);
    expect(gw.events('delivery.sent').filter((l) => l.queueId === r.queueId)).toHaveLength(1);
  });

  it('archive.failOpen with the journal server down: delivered anyway, archive.fail-open counted, the gateway stays ready', async () => {
    const journalPort = await closedPort();
    const mx = await s.mx();
    const gw = await s.gateway({
      admin: await adminConfig(),
      delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'may' } } },
      archive: { failOpen: true, sinks: [{ type: 'smtp', server: `127.0.0.1:${journalPort}`, to: 'journal@archive.test', servername: 'journal.archive.test', ca: [ca.caFile], timeout: '3s' }] },
    });
    const admin = await startAdmin(gw);
    try {
      const first = await sendMail(gw.port, { from: 'dr@client.test', to: ['p@dest.test'], raw: testMessage({ subject: 'Fail open 1' }) });
      expect(first.ok).toBe(true);
      await gw.waitForLog((l) => l.event === 'delivery.sent' && l.queueId === first.queueId);
      expect(gw.events('archive.fail-open').map((l) => l.queueId)).toEqual([first.queueId]);
      // The failed journal does not turn mail away: readiness and SMTP stay open.
      expect((await call(`${admin.url}/readyz`)).status).toBe(200);
      const second = await sendMail(gw.port, { from: 'dr@client.test', to: ['p@dest.test'], raw: testMessage({ subject: 'Fail open 2' }) });
      expect(second.ok).toBe(true);
      await gw.waitForLog((l) => l.event === 'delivery.sent' && l.queueId === second.queueId);
      const metrics = parseMetrics((await call(`${admin.url}/metrics`)).text);
      expect(sample(metrics, 'postern_archive_alerts_total', { event: 'archive.fail-open' })).toBe(2);
      expect(mx.messages).toHaveLength(2);
    } finally {
      await admin.close();
    }
  });

  it('a deferred message keeps its journaled mark: its retries are not journaled again', async () => {
    const port = await closedPort();
    const gw = await s.gateway({ delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${port}`, tls: 'may' } } } });
    const r = await sendMail(gw.port, { from: 'dr@client.test', to: ['later@dest.test'], raw: testMessage({ subject: 'Deferred once' }) });
    const id = r.queueId as string;
    await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === id);
    // The outcome is logged just before the state is saved.
    let saved = await gw.gateway.queue.get(id);
    for (let i = 0; i < 50 && !saved?.state.recipients[0]?.attempts; i++) {
      await new Promise((res) => setTimeout(res, 20));
      saved = await gw.gateway.queue.get(id);
    }
    expect(saved?.state.recipients[0]?.attempts).toBe(1);
    expect(saved?.state.journaled).toBe(true);
    const mx = await s.mx({ port });
    await mx.waitFor(1, 20_000);
    await gw.waitForLog((l) => l.event === 'delivery.sent' && l.queueId === id);
    expect(gw.events('archive.journaled').filter((l) => l.queueId === id)).toHaveLength(1);
  });

  it('a recipient no method could serve is archived as what happened to it (bounced, deferred, portal), never as the method it did not get', async () => {
    const mx = await s.mx();
    const policy = join(scratch, 'pgp-required.yaml');
    writeFileSync(
      policy,
      [
        'defaults: { methods: [tls], tls: may, onNoMethod: defer }',
        'recipients:',
        '  bounce@dest.test: { methods: [pgp], onNoMethod: bounce }',
        '  wait@dest.test: { methods: [pgp], onNoMethod: defer }',
        '  portal@dest.test: { methods: [pgp], onNoMethod: portal }',
        '',
      ].join('\n'),
    );
    const gw = await s.gateway({ policy: { file: policy }, delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'may' } } } });
    const r = await sendMail(gw.port, { from: 'dr@client.test', to: ['bounce@dest.test', 'wait@dest.test', 'portal@dest.test', 'ok@dest.test'], raw: testMessage({ subject: 'No key for some' }) });
    expect(r.ok).toBe(true);
    const id = r.queueId as string;
    await gw.waitForLog((l) => l.event === 'delivery.bounced' && l.queueId === id && l.to === 'bounce@dest.test');
    await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === id && l.to === 'wait@dest.test');
    await gw.waitForLog((l) => l.event === 'portal.notice' && l.queueId === id);
    await gw.waitForLog((l) => l.event === 'delivery.sent' && l.queueId === id && l.to === 'ok@dest.test');
    const archive = await openArchive(gw.config, gw.dataDir);
    const found = await searchArchive(archive.reader, { sender: 'dr@client.test' }, gw.config.archive.searchLimits);
    const meta = found.hits.find((h) => h.meta.id === id)?.meta;
    const byRcpt = Object.fromEntries((meta?.recipients ?? []).map((e) => [e.rcpt, e]));
    expect(byRcpt['bounce@dest.test']).toMatchObject({ method: 'bounce', reason: expect.stringMatching(/requires pgp and none is possible/) as unknown });
    expect(byRcpt['wait@dest.test']).toMatchObject({ method: 'defer', reason: expect.stringMatching(/requires pgp; none is possible now/) as unknown });
    expect(byRcpt['portal@dest.test']).toMatchObject({ method: 'portal' });
    expect(byRcpt['ok@dest.test']).toMatchObject({ method: 'tls' });
  });

  it('archive directory unusable under a running gateway: a journal deferral and nothing delivered; repaired, the message is delivered once and archived once', async () => {
    const mx = await s.mx();
    const gw = await s.gateway({ delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'may' } } } });
    const archiveDir = join(gw.dataDir, 'archive');
    const broken = breakDirectory(archiveDir);
    let repaired = false;
    try {
      const r = await sendMail(gw.port, { from: 'dr@client.test', to: ['p@dest.test'], raw: testMessage({ subject: 'Archive disk trouble' }) });
      expect(r.ok).toBe(true);
      const id = r.queueId as string;
      const deferred = await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === id);
      expect(deferred, broken.how).toMatchObject({ category: 'journal', dsn: '4.3.0' });
      expect(gw.events('archive.journal-failed').find((l) => l.queueId === id)).toMatchObject({ sink: 'fs', refused: 'sink-unavailable' });
      // Retries keep failing while it stays broken: still nothing at the MX.
      await gw.waitForLog((l) => l.event === 'delivery.deferred' && l.queueId === id && l.attempt === 2);
      expect(mx.messages).toHaveLength(0);

      broken.repair();
      repaired = true;
      await gw.waitForLog((l) => l.event === 'delivery.sent' && l.queueId === id);
      await mx.waitFor(1);
      await new Promise((res) => setTimeout(res, 1000));
      expect(mx.messages).toHaveLength(1);
      const log = readFileSync(join(archiveDir, 'chains', 'journal-0.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; id?: string });
      expect(log.filter((x) => x.type === 'item' && x.id === id)).toHaveLength(1);
      expect(gw.events('archive.journaled').filter((l) => l.queueId === id)).toHaveLength(1);
      const { reader } = await openArchive(gw.config, gw.dataDir);
      expect((await verifyArchive(reader)).problems).toEqual([]);
    } finally {
      if (!repaired) broken.repair();
    }
  });
});
