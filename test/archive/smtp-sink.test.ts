import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { selfSigned } from '../helpers/pki.js';
import { decisions, envelope, message } from './helpers.js';
import { smtpArchive } from './smtp-helpers.js';

const { serverCert, mx, closedPort, journalTo } = smtpArchive('Archive Test CA');

describe('smtp journal sink', () => {
  it('rejects while the archive server is down; once it is up, exactly one report arrives over verified TLS', async () => {
    const port = await closedPort();
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
