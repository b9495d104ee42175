import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { DkimSigner } from '../../src/sign/dkim.js';
import { loadDkimKeys } from '../../src/sign/dkim-keys.js';
import { prependHeader } from '../../src/sign/prepend.js';
import { dkimConfig, mailauthVerify, makeDkimKey, opendkimPrograms, opendkimVerify, type TestDkimKey } from '../helpers/dkim.js';

const opendkim = opendkimPrograms();
const logs: Record<string, unknown>[] = [];
const log = createLogger('info', { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) });

const message = (from: string, body = 'Hello,\r\n\r\nthe results are attached.\r\n') =>
  Buffer.from([`From: ${from}`, 'To: patient@dest.test', 'Subject: Results', 'Date: Tue, 01 Dec 2026 10:00:00 +0000', 'Message-ID: <m1@client.test>', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', body].join('\r\n'));

async function signerFor(keys: TestDkimKey[]): Promise<DkimSigner> {
  const config = validateConfig({ hostname: 'postern.test', dkim: dkimConfig(keys) });
  return new DkimSigner(await loadDkimKeys(config), log);
}

async function signed(signer: DkimSigner, raw: Buffer, mailFrom = 'sender@client.test'): Promise<Buffer> {
  const s = await signer.sign(raw, { mailFrom, queueId: 'q1' });
  if (!s) throw new Error('not signed');
  return prependHeader(s.header, raw) as Buffer;
}

describe('DKIM signing', () => {
  const rsa = makeDkimKey('client.test', 'rsa2026');
  const ed = makeDkimKey('client.test', 'ed2026', 'ed25519-sha256');

  it('signs for the From domain; mailauth verifies rsa-sha256 and ed25519-sha256, and catches a changed body', async () => {
    const signer = await signerFor([rsa, ed]);
    const out = await signed(signer, message('"Dr. A" <dr@client.test>'));
    const results = await mailauthVerify(out, [rsa, ed]);
    expect(results.map((r) => [r.status, r.domain, r.selector, r.algo]).sort()).toEqual([
      ['pass', 'client.test', 'ed2026', 'ed25519-sha256'],
      ['pass', 'client.test', 'rsa2026', 'rsa-sha256'],
    ]);
    const tampered = Buffer.from(out.toString('latin1').replace('results are attached', 'results are attached!'), 'latin1');
    // mailauth reports a body hash mismatch as "neutral (body hash did not verify)".
    expect((await mailauthVerify(tampered, [rsa, ed])).map((r) => r.status)).toEqual(['neutral', 'neutral']);
    const line = logs.find((l) => l.event === 'dkim.signed' && l.queueId === 'q1');
    expect(line).toMatchObject({ domain: 'client.test', selector: 'rsa2026,ed2026' });
    expect(JSON.stringify(logs)).not.toContain('PRIVATE KEY');
  });

  it('streams a large message once, in chunks, and the signature still verifies', async () => {
    const signer = await signerFor([rsa]);
    const body = `${'A line of a long body that goes on and on.\r\n'.repeat(120_000)}`;
    const raw = message('dr@client.test', body);
    const chunks = (b: Buffer) => Readable.from((function* () {
      for (let i = 0; i < b.length; i += 65_536) yield b.subarray(i, i + 65_536);
    })());
    const s = await signer.sign(chunks(raw), { mailFrom: 'dr@client.test', queueId: 'q2' });
    const out: Buffer[] = [];
    for await (const c of prependHeader(s!.header, chunks(raw)) as Readable) out.push(c as Buffer);
    expect((await mailauthVerify(Buffer.concat(out), [rsa])).map((r) => r.status)).toEqual(['pass']);
  });

  it('a subdomain is signed with its parent domain key; without a key or sender domain nothing is signed', async () => {
    const signer = await signerFor([rsa]);
    const sub = await signer.sign(message('alerts@mail.client.test'), { mailFrom: '', queueId: 'q3' });
    expect(sub).toMatchObject({ domain: 'client.test', selectors: ['rsa2026'] });
    expect(await signer.sign(message('someone@other.test'), { mailFrom: 'x@client.test', queueId: 'q4' })).toBeUndefined();
    // No From header: the envelope sender's domain decides.
    const noFrom = Buffer.from('Subject: x\r\n\r\nbody\r\n');
    expect(await signer.sign(noFrom, { mailFrom: 'x@client.test', queueId: 'q5' })).toMatchObject({ domain: 'client.test' });
    expect(await signer.sign(noFrom, { mailFrom: '', queueId: 'q6' })).toBeUndefined();
  });

  it('refuses at start-up a key that does not fit its algorithm, naming the entry', async () => {
    const config = validateConfig({ hostname: 'postern.test', dkim: { keys: [{ domain: 'client.test', selector: 's1', algorithm: 'ed25519-sha256', privateKey: rsa.privateKey }] } });
    await expect(loadDkimKeys(config)).rejects.toThrow(/dkim\.keys\.0 \(s1\._domainkey\.client\.test\): the key is rsa, but algorithm is ed25519-sha256/);
  });

  // Skipped only on a developer machine without opendkim-testmsg (or a user namespace to run it in); under CI=true opendkimPrograms throws.
  describe.skipIf(!opendkim)('verified by OpenDKIM (opendkim-testmsg)', () => {
    it('accepts rsa-sha256 and ed25519-sha256, and rejects a changed body', async () => {
      const programs = opendkim as NonNullable<typeof opendkim>;
      const signer = await signerFor([rsa]);
      const out = await signed(signer, message('dr@client.test'));
      expect(opendkimVerify(programs, out, [rsa])).toEqual({ code: 0, stderr: '' });
      const edOnly = await signed(await signerFor([ed]), message('dr@client.test'));
      expect(opendkimVerify(programs, edOnly, [ed])).toEqual({ code: 0, stderr: '' });
      const tampered = Buffer.from(out.toString('latin1').replace('Hello', 'Hallo'), 'latin1');
      const bad = opendkimVerify(programs, tampered, [rsa]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/bad signature|body hash/i);
    });
  });
});
