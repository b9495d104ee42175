import { describe, expect, it } from 'vitest';
import { scenario } from '../helpers/scenario.js';
import { sendMail } from '../helpers/smtp-client.js';
import { dkimConfig, mailauthVerify, makeDkimKey, opendkimPrograms, opendkimVerify } from '../helpers/dkim.js';

// Over real sockets: client -> Postern -> MX. A header-only cron mail from a domain with a
// DKIM key was deferred on every attempt (dkim.failed "produced no signature") until it
// bounced five days later; it now arrives signed, with the blank line it was signed with.

const opendkim = opendkimPrograms();
const key = makeDkimKey('client.test', 'sel1');
const HEAD = ['From: cron <cron@client.test>', 'To: ops@dest.test', 'Subject: nightly job ok', 'Date: Tue, 01 Dec 2026 03:00:00 +0000'];

describe('DKIM over SMTP: mail without the blank line after its headers', () => {
  const s = scenario();

  it('a header-only message and one with body lines in its header section arrive signed, and verify', async () => {
    const mx = await s.mx();
    const gw = await s.gateway({ delivery: { routes: { 'dest.test': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } }, dkim: dkimConfig([key]) });
    const headerOnly = `${[...HEAD, 'Message-ID: <h1@client.test>'].join('\r\n')}\r\n`;
    const bodyInHead = `${[...HEAD, 'Message-ID: <h2@client.test>', 'All 12 jobs ran.'].join('\r\n')}\r\n`;
    expect((await sendMail(gw.port, { from: 'cron@client.test', to: ['ops@dest.test'], raw: headerOnly })).ok).toBe(true);
    expect((await sendMail(gw.port, { from: 'cron@client.test', to: ['ops@dest.test'], raw: bodyInHead })).ok).toBe(true);
    await mx.waitFor(2, 15_000).catch((err: Error) => {
      const failed = gw.events('dkim.failed');
      throw new Error(`${err.message}; ${failed.length} dkim.failed: ${[...new Set(failed.map((l) => String(l.reason)))].join(' | ')}`);
    });
    expect(gw.events('dkim.failed')).toEqual([]);
    for (const [id, tail] of [['h1', 'Message-ID: <h1@client.test>\r\n\r\n'], ['h2', 'Message-ID: <h2@client.test>\r\n\r\nAll 12 jobs ran.\r\n']] as const) {
      const got = mx.messages.find((m) => m.raw.includes(`<${id}@client.test>`));
      expect((await mailauthVerify(got!.raw, [key])).map((r) => `${r.status} ${r.domain}`)).toEqual(['pass client.test']);
      if (opendkim) expect(opendkimVerify(opendkim, got!.raw, [key])).toEqual({ code: 0, stderr: '' });
      expect(got!.raw.toString('latin1').endsWith(tail), `${id} as received:\n${got!.raw.toString('latin1')}`).toBe(true);
    }
  });
});
