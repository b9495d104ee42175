import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { DkimSigner } from '../../src/sign/dkim.js';
import { loadDkimKeys } from '../../src/sign/dkim-keys.js';
import { prependHeader } from '../../src/sign/prepend.js';
import { mailauthVerify, makeDkimKey, opendkimPrograms, opendkimVerify } from '../helpers/dkim.js';

// An internationalised From domain (RFC 6532: UTF-8 in the header) was read as latin1 and
// compared with the key's A-label domain, so it went out unsigned, without a word.

const opendkim = opendkimPrograms();
// The verifiers look the key up under its A-label name; the config names it in U-labels.
const key = makeDkimKey('xn--bcher-kva.example', 'sel1');

async function setup() {
  const logs: Record<string, unknown>[] = [];
  const log = createLogger('debug', { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) });
  const config = validateConfig({ hostname: 'postern.test', dkim: { keys: [{ domain: 'Bücher.example', selector: key.selector, algorithm: key.algorithm, privateKey: key.privateKey }] } });
  return { logs, signer: new DkimSigner(await loadDkimKeys(config), log) };
}

const message = (from: string) => Buffer.from(`${from ? `From: ${from}\r\n` : ''}To: b@dest.test\r\nSubject: Bücher\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nHallo\r\n`, 'utf8');

describe('DKIM for an internationalised sender domain', () => {
  it('a UTF-8 From domain is signed with the key of its A-label form, and verifies', async () => {
    const { signer } = await setup();
    const raw = message('"Bücherei" <info@bücher.example>');
    const signed = await signer.sign(raw, { mailFrom: 'info@xn--bcher-kva.example', queueId: 'q1' });
    expect(signed).toMatchObject({ domain: 'xn--bcher-kva.example', selectors: ['sel1'] });
    const out = prependHeader(signed!.header, raw) as Buffer;
    expect((await mailauthVerify(out, [key])).map((r) => `${r.status} ${r.domain}`)).toEqual(['pass xn--bcher-kva.example']);
    if (opendkim) expect(opendkimVerify(opendkim, out, [key])).toEqual({ code: 0, stderr: '' });
  });

  it('without a From, the envelope sender as smtp-server hands it over (U-labels) decides', async () => {
    const { signer } = await setup();
    expect(await signer.sign(message(''), { mailFrom: 'info@BÜCHER.example', queueId: 'q2' })).toMatchObject({ domain: 'xn--bcher-kva.example' });
  });

  it('a message no key signs goes out unsigned with one dkim.unsigned line (debug) naming the domain looked up', async () => {
    const { signer, logs } = await setup();
    expect(await signer.sign(message('info@bücher.example.org'), { mailFrom: '', queueId: 'q3' })).toBeUndefined();
    expect(logs.filter((l) => l.event === 'dkim.unsigned')).toMatchObject([{ level: 'debug', queueId: 'q3', fromDomain: 'xn--bcher-kva.example.org' }]);
    expect(logs.filter((l) => l.event === 'dkim.signed')).toEqual([]);
  });
});
