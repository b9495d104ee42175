import { rmSync } from 'node:fs';
import { simpleParser } from 'mailparser';
import { afterAll, describe, expect, it } from 'vitest';
import { openJournal } from '../../src/archive/journal.js';
import { TestMx } from '../helpers/mx-server.js';
import { createTestCa, selfSigned } from '../helpers/pki.js';
import { archiveConfig, decisions, envelope, message, silent, tempDir } from './helpers.js';

const ca = createTestCa('Archive Test CA');
const serverCert = ca.issue(['archive.test']);
const dirs: string[] = [];
const servers: TestMx[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

async function mx(opts: ConstructorParameters<typeof TestMx>[0]): Promise<TestMx> {
  const s = await new TestMx(opts).start();
  servers.push(s);
  return s;
}

function journalTo(port: number, extra: Record<string, unknown> = {}) {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const smtp = { type: 'smtp', server: `127.0.0.1:${port}`, to: 'journal@archive.test', servername: 'archive.test', ca: [ca.caFile], timeout: '5s', ...extra };
  const { config } = archiveConfig(dataDir, { sinks: [{ type: 'fs' }, smtp] });
  return openJournal(config, dataDir, silent);
}

describe('smtp journal sink', () => {
  it('rejects while the archive server is down; once it is up, exactly one report arrives over verified TLS', async () => {
    const probe = await mx({ tls: serverCert });
    const port = probe.port;
    await probe.stop();
    const journal = await journalTo(port);
    const e = envelope({ to: ['patient@example.net', 'nurse@example.org'] });
    const original = message('Discharge summary', 'Take one tablet daily.');
    const item = { envelope: e, decisions: decisions(e, 'portal'), body: original, categories: ['phi'] };
    await expect(journal!.record(item)).rejects.toThrow(/smtp:127\.0\.0\.1:\d+ sink: .*ECONNREFUSED/);

    const archive = await mx({ tls: serverCert, port });
    await journal!.record(item);
    await journal!.record(item); // a retry of the same message: no second report
    await journal!.close();
    expect(archive.messages).toHaveLength(1);
    const got = archive.messages[0]!;
    expect(got.secure).toBe(true);
    expect(got.rcptTo).toEqual(['journal@archive.test']);
    expect(got.mailFrom).toBe('postern-journal@gw.example.test');
    const report = await simpleParser(got.raw);
    expect(report.headers.get('x-postern-queue-id')).toBe(e.id);
    expect(report.subject).toBe(`Journal report ${e.id}`);
    expect(report.text).toContain(`Sender: ${e.mailFrom}`);
    expect(report.text).toContain('To: patient@example.net, Method: portal, Rule: default');
    expect(report.text).toContain('To: nurse@example.org, Method: portal, Rule: default');
    expect(report.text).toContain('Categories: phi');
    const attached = report.attachments.find((a) => a.contentType === 'message/rfc822');
    expect(attached?.content.equals(original)).toBe(true);
  });

  it('does not send to a server whose certificate it cannot verify', async () => {
    const untrusted = await mx({ tls: selfSigned('archive.test') });
    const journal = await journalTo(untrusted.port);
    const e = envelope();
    await expect(journal!.record({ envelope: e, decisions: decisions(e), body: message('x', 'y') })).rejects.toThrow(/smtp:.* sink: .*(certificate|self.signed)/i);
    await journal!.close();
    expect(untrusted.messages).toHaveLength(0);
  });

  it('does not send in clear text to a server without STARTTLS', async () => {
    const plain = await mx({});
    const journal = await journalTo(plain.port);
    const e = envelope();
    await expect(journal!.record({ envelope: e, decisions: decisions(e), body: message('x', 'y') })).rejects.toThrow(/smtp:.* sink: .*STARTTLS/i);
    await journal!.close();
    expect(plain.messages).toHaveLength(0);
  });
});
