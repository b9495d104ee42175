import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openJournal } from '../../src/archive/journal.js';
import { isSmtpItemRefusal } from '../../src/archive/smtp-refusal.js';
import { archiveConfig, decisions, envelope, message, silent, tempDir } from './helpers.js';
import { smtpArchive } from './smtp-helpers.js';

const { serverCert, mx, closedPort, journalTo } = smtpArchive('Journal Readiness CA');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const item = (subject: string) => {
  const e = envelope();
  return { envelope: e, decisions: decisions(e), body: message(subject, 'body') };
};

describe('journal readiness', () => {
  it('a message the archive mailbox refuses permanently (5xx at DATA) fails that message only: the gateway stays ready', async () => {
    const archive = await mx({ tls: serverCert, dataReply: (m) => (m.raw.includes('TOO BIG') ? [552, '5.3.4 Message too big for system'] : undefined) });
    const j = await journalTo(archive.port);
    await expect(j!.record(item('TOO BIG'))).rejects.toThrow(/552/);
    expect(j!.ready()).toBe(true);
    await j!.record(item('fine'));
    expect(archive.messages).toHaveLength(1);
    await j!.close();
  });

  it('an unavailable sink still gates readiness: connection refused, a 4xx at DATA, the archive address refused', async () => {
    const down = await journalTo(await closedPort());
    await expect(down!.record(item('x'))).rejects.toThrow(/ECONNREFUSED/);
    expect(down!.ready()).toBe(false);
    await down!.close();

    const busy = await mx({ tls: serverCert, dataReply: () => [451, '4.3.0 try later'] });
    const j = await journalTo(busy.port);
    await expect(j!.record(item('x'))).rejects.toThrow(/451/);
    expect(j!.ready()).toBe(false);
    await j!.close();

    const noMailbox = await mx({ tls: serverCert, rcptReply: () => [550, '5.1.1 no such mailbox'] });
    const k = await journalTo(noMailbox.port);
    await expect(k!.record(item('x'))).rejects.toThrow(/550/);
    expect(k!.ready()).toBe(false);
    await k!.close();
  });

  it('an fs sink I/O error gates readiness', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { config } = archiveConfig(dataDir);
    const j = await openJournal(config, dataDir, silent);
    const archiveDir = join(dataDir, 'archive');
    renameSync(archiveDir, `${archiveDir}.away`);
    writeFileSync(archiveDir, 'not a directory');
    await expect(j!.record(item('x'))).rejects.toThrow(/fs sink/);
    expect(j!.ready()).toBe(false);
    rmSync(archiveDir);
    renameSync(`${archiveDir}.away`, archiveDir);
    await j!.record(item('y'));
    expect(j!.ready()).toBe(true);
    await j!.close();
  });

  it('with archive.failOpen the journal never gates readiness, even with its sink down', async () => {
    const j = await journalTo(await closedPort(), {}, { failOpen: true });
    await expect(j!.record(item('x'))).rejects.toThrow(/ECONNREFUSED/);
    expect(j!.failOpen).toBe(true);
    expect(j!.ready()).toBe(true);
    await j!.close();
  });

  it('classifies nodemailer errors: per-message refusals apart from unavailability', () => {
    expect(isSmtpItemRefusal({ code: 'EMESSAGE', responseCode: 552, command: 'DATA' })).toBe(true);
    expect(isSmtpItemRefusal({ code: 'EMESSAGE', command: 'MAIL FROM' })).toBe(true); // over the announced SIZE
    expect(isSmtpItemRefusal({ code: 'EENVELOPE', responseCode: 552, command: 'MAIL FROM' })).toBe(true);
    expect(isSmtpItemRefusal({ code: 'EMESSAGE', responseCode: 451, command: 'DATA' })).toBe(false);
    expect(isSmtpItemRefusal({ code: 'EMESSAGE', responseCode: 503, command: 'DATA' })).toBe(false);
    expect(isSmtpItemRefusal({ code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO' })).toBe(false);
    for (const code of ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'ETLS', 'EAUTH', 'EDNS']) expect(isSmtpItemRefusal({ code })).toBe(false);
    expect(isSmtpItemRefusal(Object.assign(new Error('EIO'), { code: 'EIO' }))).toBe(false);
    expect(isSmtpItemRefusal(undefined)).toBe(false);
  });
});
